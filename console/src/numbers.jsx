import { api, ApiError, errorText } from './api.js';
import { fmtMoney, fmtNumber, t } from './i18n.js';
import { usePoll } from './hooks.js';

const DAYS = 30;

const sum = (o) => (o ? Object.values(o).reduce((n, v) => n + (Number(v) || 0), 0) : 0);
const pairs = (o) =>
  o
    ? Object.entries(o)
        .filter(([, v]) => v)
        .map(([k, v]) => `${k} ${fmtNumber(v)}`)
        .join(', ')
    : '';
const share = (d) => (d.turns ? `${fmtNumber((100 * d.playbook_turns) / d.turns, 0)} %` : '–');
const latency = (l) => (l ? `${fmtNumber(l.p50)} / ${fmtNumber(l.p90)} / ${fmtNumber(l.p99)} ms` : '–');

function Card({ label, value, detail, id }) {
  return (
    <div class="stat" id={id}>
      <dt>{label}</dt>
      <dd>
        <span class="value">{value}</span>
        {detail && <span class="stat-detail">{detail}</span>}
      </dd>
    </div>
  );
}

// A bar per day, drawn with CSS; the table below holds the same numbers
// for screen readers (the chart is hidden from them).
function Bars({ days }) {
  const max = Math.max(1, ...days.map((d) => d.turns || 0));
  return (
    <figure class="bars" aria-hidden="true">
      <figcaption>{t('num.turnsChart')}</figcaption>
      <div class="bar-row">
        {days.map((d) => (
          <span class="bar" title={`${d.day}: ${d.turns}`} style={{ height: `${Math.round((100 * (d.turns || 0)) / max)}%` }} />
        ))}
      </div>
    </figure>
  );
}

export function Numbers() {
  const [{ data, error }] = usePoll(
    async () => {
      try {
        return await api.stats(DAYS);
      } catch (e) {
        // No stats route on this server yet: "no numbers yet", not an error.
        if (e instanceof ApiError && e.status === 404) return { missing: true };
        throw e;
      }
    },
    60000,
    [],
  );
  return (
    <section aria-labelledby="num-title">
      <h1 id="num-title">{t('num.title', { days: DAYS })}</h1>
      {error && (
        <p class="error" role="alert">
          {errorText(t, error)}
        </p>
      )}
      {!data && !error && <p aria-busy="true">{t('loading')}</p>}
      {data && data.missing && (
        <p class="notice" id="no-numbers">
          {t('num.none')}
        </p>
      )}
      {data && !data.missing && <Stats s={data} />}
    </section>
  );
}

function Stats({ s }) {
  const tot = s.totals || {};
  const cur = s.currency;
  const days = s.days || [];
  return (
    <>
      <dl class="stats">
        <Card label={t('num.conversations')} value={fmtNumber(tot.conversations)} />
        <Card label={t('num.turns')} value={fmtNumber(tot.turns)} />
        <Card label={t('num.playbookShare')} value={share(tot)} />
        <Card label={t('num.modelCalls')} value={fmtNumber(tot.model_calls)} />
        <Card label={t('num.tokens')} value={`${fmtNumber(tot.tokens_in)} / ${fmtNumber(tot.tokens_out)}`} />
        <Card label={t('num.toolCalls')} value={fmtNumber(sum(tot.tool_calls))} detail={pairs(tot.tool_calls)} />
        <Card label={t('num.escalations')} value={fmtNumber(sum(tot.escalations))} detail={pairs(tot.escalations)} />
        <Card label={t('num.calls')} value={fmtNumber(sum(tot.calls))} detail={`${pairs(tot.calls)}${tot.call_minutes ? ` · ${fmtNumber(tot.call_minutes, 1)} min` : ''}`} />
        <Card label={t('num.media')} value={fmtNumber(sum(tot.media))} detail={pairs(tot.media)} />
        <Card label={t('num.latency')} value={latency(tot.latency_ms)} />
        <Card id="cost-total" label={t('num.cost')} value={fmtMoney(tot.cost && tot.cost.total, cur)} />
        <Card label={t('num.costPerConversation')} value={fmtMoney(tot.cost_per_conversation, cur)} />
        <Card label={t('num.costPer1000')} value={fmtMoney(tot.cost_per_1000_conversations, cur)} />
      </dl>
      <Bars days={days} />
      <h2>{t('num.perDay')}</h2>
      <div class="table-wrap" tabIndex={0} role="region" aria-label={t('num.perDay')}>
        <table class="per-day">
          <thead>
            <tr>
              <th scope="col">{t('num.day')}</th>
              <th scope="col">{t('num.conversations')}</th>
              <th scope="col">{t('num.turns')}</th>
              <th scope="col">{t('num.playbookShare')}</th>
              <th scope="col">{t('num.modelCalls')}</th>
              <th scope="col">{t('num.tokens')}</th>
              <th scope="col">{t('num.toolCalls')}</th>
              <th scope="col">{t('num.escalations')}</th>
              <th scope="col">{t('num.calls')}</th>
              <th scope="col">{t('num.media')}</th>
              <th scope="col">{t('num.latency')}</th>
              <th scope="col">{t('num.cost')}</th>
            </tr>
          </thead>
          <tbody>
            {days
              .slice()
              .reverse()
              .map((d) => (
                <tr>
                  <th scope="row">{d.day}</th>
                  <td class="n">{fmtNumber(d.conversations)}</td>
                  <td class="n">{fmtNumber(d.turns)}</td>
                  <td class="n">{share(d)}</td>
                  <td class="n">{fmtNumber(d.model_calls)}</td>
                  <td class="n">
                    {fmtNumber(d.tokens_in)} / {fmtNumber(d.tokens_out)}
                  </td>
                  <td>{pairs(d.tool_calls) || '0'}</td>
                  <td>{pairs(d.escalations) || '0'}</td>
                  <td>{pairs(d.calls) || '0'}</td>
                  <td>{pairs(d.media) || '0'}</td>
                  <td class="n">{latency(d.latency_ms)}</td>
                  <td class="n">{fmtMoney(d.cost && d.cost.total, s.currency)}</td>
                </tr>
              ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
