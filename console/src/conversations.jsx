import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, errorText } from './api.js';
import { fmtMoney, fmtNumber, fmtTime, locale, t } from './i18n.js';
import { changed, go, usePoll } from './hooks.js';

const STATES = ['bot', 'pending_human', 'human', 'closed'];
const POLL_MS = 3000;
// The list follows `next` this far on each poll; older pages on demand.
const LIST_PAGES = 1;
const TRANSCRIPT_PAGES = 10;

export function StateBadge({ state }) {
  return <span class={`badge state-${state}`}>{t(`state.${state}`) || state}</span>;
}

function displayNumber(id) {
  return /^\d+$/.test(id) ? `+${id}` : id;
}

function ConversationList({ selected }) {
  const [pages, setPages] = useState(LIST_PAGES);
  // More pages: loaded at once, keeping the list shown meanwhile.
  useEffect(() => {
    if (pages > LIST_PAGES) changed();
  }, [pages]);
  const [filter, setFilter] = useState('');
  const [query, setQuery] = useState('');
  const [{ data, error, at }] = usePoll(
    async () => {
      let items = [];
      let cursor;
      let next = null;
      for (let i = 0; i < pages; i++) {
        const page = await api.conversations(cursor);
        items = items.concat(page.conversations || []);
        next = page.next;
        if (!next) break;
        cursor = next;
      }
      return { items, more: !!next };
    },
    POLL_MS,
    [],
  );
  const items = data ? data.items : [];
  const q = query.trim().toLowerCase();
  const qDigits = q.replace(/[^\d]/g, '');
  const shown = items.filter((c) => {
    if (filter && c.state !== filter) return false;
    if (!q) return true;
    const name = (c.contact_name || '').toLowerCase();
    return name.includes(q) || c.user_id.toLowerCase().includes(q) || (qDigits && c.user_id.includes(qDigits));
  });
  return (
    <section class="list" aria-labelledby="conv-list-title">
      <h1 id="conv-list-title">{t('nav.conversations')}</h1>
      <div class="filters">
        <label>
          <span>{t('conv.filter')}</span>
          <select id="state-filter" value={filter} onChange={(e) => setFilter(e.currentTarget.value)}>
            <option value="">{t('conv.filter.all')}</option>
            {STATES.map((s) => (
              <option value={s}>{t(`state.${s}`)}</option>
            ))}
          </select>
        </label>
        <label>
          <span>{t('conv.search')}</span>
          <input id="search" type="search" value={query} onInput={(e) => setQuery(e.currentTarget.value)} aria-describedby="search-note" />
        </label>
        <p id="search-note" class="hint">
          {t('conv.searchNote')}
        </p>
      </div>
      {error && (
        <p class="error" role="alert">
          {errorText(t, error)}
        </p>
      )}
      {!data && !error && <p aria-busy="true">{t('loading')}</p>}
      {data && items.length === 0 && <p>{t('conv.none')}</p>}
      {data && items.length > 0 && shown.length === 0 && <p>{t('conv.noMatch')}</p>}
      <ul class="conversations" aria-live="polite" aria-relevant="additions">
        {shown.map((c) => (
          <li key={c.user_id}>
            <a
              href={`#/conversations/${encodeURIComponent(c.user_id)}`}
              aria-current={c.user_id === selected ? 'true' : undefined}
              class="conv-link"
              data-user={c.user_id}
            >
              <span class="who">
                <strong>{c.contact_name || t('conv.unknown')}</strong>
                <span class="num">{displayNumber(c.user_id)}</span>
              </span>
              <span class="meta">
                <StateBadge state={c.state} />
                <span class="when">{fmtTime(c.last_message_at)}</span>
              </span>
            </a>
          </li>
        ))}
      </ul>
      {data && data.more && (
        <button type="button" onClick={() => setPages(pages + 1)}>
          {t('conv.more')}
        </button>
      )}
      {at && <p class="hint updated">{t('updated', { time: at.toLocaleTimeString(locale()) })}</p>}
    </section>
  );
}

// Plain characters every system font has (no emoji font in many browsers).
const TICKS = { accepted: '○', sent: '✓', delivered: '✓✓', read: '✓✓', failed: '!' };

function Ticks({ m }) {
  if (m.direction !== 'outbound' || !m.delivery) return null;
  const label = t(`delivery.${m.delivery}`) + (m.error_code ? ` (${t('delivery.code', { code: m.error_code })})` : '');
  return (
    <span class={`ticks d-${m.delivery}`} title={label}>
      <span aria-hidden="true">{TICKS[m.delivery] || ''}</span>
      <span class="sr-only">{label}</span>
      {m.delivery === 'failed' && <span class="fail-text">{label}</span>}
    </span>
  );
}

function kindLabel(kind, direction) {
  if (!kind || kind === 'text') return '';
  // Ours are buttons or lists; the user's are the taps on them.
  const key = kind === 'interactive' && direction === 'outbound' ? 'msg.kind.buttons' : `msg.kind.${kind}`;
  const s = t(key);
  return s === key ? t('msg.kind.other', { kind }) : s;
}

function Message({ m }) {
  const label = kindLabel(m.kind, m.direction);
  const call = m.kind && m.kind.startsWith('call_');
  return (
    <li class={`msg ${m.direction} kind-${m.kind}${call ? ' call' : ''}`} data-wamid={m.wamid}>
      <div class="bubble">
        <p class="who-line">
          <span class="sr-only">{m.direction === 'inbound' ? t('msg.in') : t('msg.out')}: </span>
          {label && <span class="kind">{label}</span>}
        </p>
        <p class="text">{m.text}</p>
        {m.media && (
          <div class={`media ${m.media.result}`}>
            <p class="media-title">{m.media.result === 'failed' ? t('msg.media.failed') : t('msg.media.understood')}</p>
            <p class="media-text">{m.media.text}</p>
          </div>
        )}
        <p class="foot">
          <time datetime={m.at}>{fmtTime(m.at)}</time>
          <Ticks m={m} />
        </p>
      </div>
    </li>
  );
}

function Turn({ turn }) {
  const bits = [];
  if (turn.via) bits.push(t('turn.via', { via: turn.via }));
  if (turn.tools && turn.tools.length) bits.push(t('turn.tools', { tools: turn.tools.join(', ') }));
  if (turn.model_calls) bits.push(t('turn.model', { calls: turn.model_calls, in: fmtNumber(turn.tokens_in), out: fmtNumber(turn.tokens_out) }));
  if (turn.latency_ms != null) bits.push(t('turn.latency', { ms: fmtNumber(turn.latency_ms) }));
  return (
    <li class={`turn${turn.escalation ? ' escalated' : ''}`}>
      <span class="turn-title">{t('turn.title')}</span> {bits.join(' · ')}
      {turn.escalation && <strong class="esc"> · {t('turn.escalation', { reason: turn.escalation })}</strong>}
    </li>
  );
}

function Usage({ usage }) {
  if (!usage) return null;
  const tools = usage.tool_calls ? Object.entries(usage.tool_calls).filter(([, n]) => n) : [];
  return (
    <section class="usage" aria-labelledby="usage-title">
      <h3 id="usage-title">{t('usage.title')}</h3>
      <dl>
        {usage.cost && (
          <>
            <dt>{t('usage.cost')}</dt>
            <dd>{fmtMoney(usage.cost.total, usage.currency)}</dd>
          </>
        )}
        {usage.turns != null && (
          <>
            <dt>{t('usage.turns')}</dt>
            <dd>{fmtNumber(usage.turns)}</dd>
          </>
        )}
        {usage.model_calls != null && (
          <>
            <dt>{t('usage.modelCalls')}</dt>
            <dd>{fmtNumber(usage.model_calls)}</dd>
          </>
        )}
        {usage.tokens_in != null && (
          <>
            <dt>{t('usage.tokens')}</dt>
            <dd>
              {fmtNumber(usage.tokens_in)} / {fmtNumber(usage.tokens_out)}
            </dd>
          </>
        )}
        {tools.length > 0 && (
          <>
            <dt>{t('usage.tools')}</dt>
            <dd>{tools.map(([k, n]) => `${k} ${n}`).join(', ')}</dd>
          </>
        )}
      </dl>
    </section>
  );
}

// One action through the API at a time; the API decides (state, window,
// length) and its words are shown as they are.
function useAct(c) {
  const [busy, setBusy] = useState('');
  const [error, setError] = useState('');
  const [done, setDone] = useState('');
  const act = async (action, body) => {
    setBusy(action);
    setError('');
    setDone('');
    try {
      await api.act(c.user_id, action, body);
      setDone(t(`act.done.${action === 'messages' ? 'message' : action}`));
      changed();
      return true;
    } catch (e) {
      setError(errorText(t, e));
      return false;
    } finally {
      setBusy('');
    }
  };
  const feedback = (
    <>
      <p class="error" role="alert">
        {error}
      </p>
      <p class="ok" role="status">
        {done}
      </p>
    </>
  );
  return { act, busy, feedback };
}

function StateButtons({ c }) {
  const { act, busy, feedback } = useAct(c);
  if (c.state === 'closed') return <p class="notice">{t('act.closed')}</p>;
  return (
    <div class="actions">
      <div class="row">
        {c.state !== 'human' && (
          <button type="button" id="takeover" onClick={() => act('takeover')} disabled={!!busy}>
            {t('act.takeover')}
          </button>
        )}
        {c.state !== 'bot' && (
          <button type="button" id="release" onClick={() => act('release')} disabled={!!busy}>
            {t('act.release')}
          </button>
        )}
      </div>
      {feedback}
    </div>
  );
}

function ReplyBox({ c }) {
  const { act, busy, feedback } = useAct(c);
  const [text, setText] = useState('');
  if (c.state === 'closed') return null;
  const send = async () => {
    if (text.trim() && (await act('messages', { text }))) setText('');
  };
  return (
    <section class="reply-box" aria-labelledby="act-title">
      <h3 id="act-title" class="sr-only">
        {t('act.title')}
      </h3>
      {c.window_open ? (
        <form
          class="reply"
          onSubmit={(e) => {
            e.preventDefault();
            send();
          }}
        >
          <label for="reply-text">{t('act.reply')}</label>
          <textarea
            id="reply-text"
            rows={3}
            maxLength={4096}
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
            onKeyDown={(e) => {
              // Ctrl/Cmd+Enter sends; Enter alone is a new line.
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
                e.preventDefault();
                send();
              }
            }}
          />
          <button type="submit" class="primary" id="send-reply" disabled={!!busy || !text.trim()}>
            {busy === 'messages' ? t('act.sending') : t('act.send')}
          </button>
        </form>
      ) : (
        <div class="reengage">
          <p class="notice">{t('act.windowClosed')}</p>
          <button type="button" id="reengage" onClick={() => act('reengage')} disabled={!!busy}>
            {t('act.reengage')}
          </button>
        </div>
      )}
      {feedback}
    </section>
  );
}

async function loadConversation(id) {
  let body = null;
  let messages = [];
  let cursor;
  for (let i = 0; i < TRANSCRIPT_PAGES; i++) {
    const page = await api.conversation(id, cursor);
    if (!body) body = page;
    messages = messages.concat(page.messages || []);
    if (!page.next) break;
    cursor = page.next;
  }
  return { ...body, messages };
}

function Conversation({ id }) {
  const [{ data, error }] = usePoll(() => loadConversation(id), POLL_MS, [id]);
  const heading = useRef(null);
  const list = useRef(null);
  const seen = useRef(0);
  const count = data ? data.messages.length + (data.turns || []).length : 0;
  useEffect(() => {
    heading.current && heading.current.focus();
    seen.current = 0;
  }, [id]);
  useEffect(() => {
    // The newest at the bottom, as in a chat; not when the operator has
    // scrolled up to read (more than a few lines from the end).
    const ol = list.current;
    if (!ol) return;
    const near = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 120;
    if (seen.current === 0 || near) ol.scrollTop = ol.scrollHeight;
    seen.current = count;
  }, [count]);
  const timeline = useMemo(() => {
    if (!data) return [];
    const items = data.messages.map((m) => ({ at: m.at || '', type: 'm', m }));
    for (const turn of data.turns || []) items.push({ at: turn.at || '', type: 't', turn });
    // Stable: messages keep the API's order, turns slot in by time.
    return items
      .map((x, i) => ({ ...x, i }))
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.i - b.i));
  }, [data]);
  return (
    <section class="detail" aria-labelledby="conv-title">
      <a class="back" href="#/conversations">
        ← {t('conv.back')}
      </a>
      {error && (
        <p class="error" role="alert">
          {errorText(t, error)}
        </p>
      )}
      <h2 id="conv-title" tabIndex={-1} ref={heading}>
        {data ? data.contact_name || t('conv.unknown') : displayNumber(id)}
        <span class="num"> {displayNumber(id)}</span>
      </h2>
      {!data && !error && <p aria-busy="true">{t('loading')}</p>}
      {data && (
        <>
          <p class="status-line">
            <StateBadge state={data.state} />
            <span class={`window ${data.window_open ? 'open' : 'closed'}`}>
              {data.window_open ? t('conv.window.open') : t('conv.window.closed')}
            </span>
          </p>
          <StateButtons c={data} />
          <Usage usage={data.usage} />
          <h3 class="sr-only">{t('conv.transcript')}</h3>
          {data.messages.length === 0 && <p>{t('conv.empty')}</p>}
          {/* Scrolls on its own: focusable so the keyboard can scroll it. */}
          <ol class="timeline" aria-label={t('conv.transcript')} ref={list} tabIndex={0} aria-live="polite" aria-relevant="additions">
            {timeline.map((x) => (x.type === 'm' ? <Message key={x.m.wamid} m={x.m} /> : <Turn key={`t${x.i}`} turn={x.turn} />))}
          </ol>
          <ReplyBox c={data} />
        </>
      )}
    </section>
  );
}

export function Conversations({ id }) {
  return (
    <div class={`split${id ? ' has-detail' : ''}`}>
      <ConversationList selected={id} />
      {id ? (
        <Conversation id={id} />
      ) : (
        <section class="detail empty">
          <p>{t('conv.pick')}</p>
        </section>
      )}
    </div>
  );
}

export { go };
