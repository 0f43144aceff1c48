import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, errorText } from './api.js';
import { fmtNumber, fmtTime, t } from './i18n.js';
import { changed, go, usePoll } from './hooks.js';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const CHANNELS = ['call', 'whatsapp', 'whatsapp_then_call'];
const CONTACT_STATES = ['pending', 'scheduled', 'calling', 'answered', 'no_answer', 'busy', 'voicemail', 'failed', 'opted_out', 'done'];
// Contacts in these states are finished with (the progress bar's share).
const FINISHED = ['answered', 'failed', 'opted_out', 'done'];
const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

function CampaignState({ state }) {
  return <span class={`badge camp-${state}`}>{t(`camp.state.${state}`)}</span>;
}

function list(s) {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

// The form becomes the campaign JSON the README documents; fields left
// empty are left out, so the API's defaults apply.
function specOf(f) {
  const spec = { name: f.name.trim(), channel: f.channel, window: f.window.trim(), days: f.days };
  if (f.channel !== 'call') {
    spec.template = { name: f.templateName.trim(), language: f.templateLanguage.trim(), parameters: list(f.templateParameters) };
  }
  if (f.holidays.trim()) spec.holidays = list(f.holidays);
  if (f.maxConcurrent) spec.max_concurrent = Number(f.maxConcurrent);
  if (f.channel === 'whatsapp_then_call' && f.callAfter) spec.call_after_minutes = Number(f.callAfter);
  if (f.timeZone.trim()) spec.time_zone = f.timeZone.trim();
  if (f.country.trim()) spec.default_country = f.country.trim().toUpperCase();
  if (f.startAt) spec.start_at = new Date(f.startAt).toISOString();
  return spec;
}

function Field({ id, label, optional, children }) {
  return (
    <div class="field">
      <label for={id}>
        {label}
        {optional && <span class="opt"> ({t('camp.optional')})</span>}
      </label>
      {children}
    </div>
  );
}

function NewCampaign({ onCreated }) {
  const [f, setF] = useState({
    name: '', channel: 'call', templateName: '', templateLanguage: 'es', templateParameters: '',
    window: '09:00-20:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'], holidays: '', maxConcurrent: '5',
    callAfter: '1440', timeZone: '', country: '', startAt: '',
  });
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  const toggleDay = (d) => setF({ ...f, days: f.days.includes(d) ? f.days.filter((x) => x !== d) : DAYS.filter((x) => x === d || f.days.includes(x)) });
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const c = await api.createCampaign(specOf(f));
      onCreated(c);
    } catch (err) {
      setError(errorText(t, err));
    } finally {
      setBusy(false);
    }
  };
  const messages = f.channel !== 'call';
  return (
    <details class="new-campaign">
      <summary>{t('camp.new')}</summary>
      <form onSubmit={submit} class="grid-form">
        <Field id="c-name" label={t('camp.name')}>
          <input id="c-name" value={f.name} onInput={set('name')} required maxLength={120} />
        </Field>
        <Field id="c-channel" label={t('camp.channel')}>
          <select id="c-channel" value={f.channel} onChange={set('channel')}>
            {CHANNELS.map((c) => (
              <option value={c}>{t(`camp.channel.${c}`)}</option>
            ))}
          </select>
        </Field>
        {messages && (
          <fieldset>
            <legend>{t('camp.template')}</legend>
            <Field id="c-tname" label={t('camp.template.name')}>
              <input id="c-tname" value={f.templateName} onInput={set('templateName')} required />
            </Field>
            <Field id="c-tlang" label={t('camp.template.language')}>
              <input id="c-tlang" value={f.templateLanguage} onInput={set('templateLanguage')} required />
            </Field>
            <Field id="c-tparams" label={t('camp.template.parameters')} optional>
              <input id="c-tparams" value={f.templateParameters} onInput={set('templateParameters')} />
            </Field>
          </fieldset>
        )}
        <Field id="c-window" label={t('camp.window')}>
          <input id="c-window" value={f.window} onInput={set('window')} pattern="\d\d:\d\d-\d\d:\d\d" required />
        </Field>
        <fieldset class="days">
          <legend>{t('camp.days')}</legend>
          {DAYS.map((d) => (
            <label class="check">
              <input type="checkbox" checked={f.days.includes(d)} onChange={() => toggleDay(d)} />
              {t(`day.${d}`)}
            </label>
          ))}
        </fieldset>
        <Field id="c-holidays" label={t('camp.holidays')} optional>
          <input id="c-holidays" value={f.holidays} onInput={set('holidays')} placeholder="2026-12-25, 2027-01-01" />
        </Field>
        {f.channel !== 'whatsapp' && (
          <Field id="c-max" label={t('camp.maxConcurrent')}>
            <input id="c-max" type="number" min="1" value={f.maxConcurrent} onInput={set('maxConcurrent')} />
          </Field>
        )}
        {f.channel === 'whatsapp_then_call' && (
          <Field id="c-after" label={t('camp.callAfter')}>
            <input id="c-after" type="number" min="1" value={f.callAfter} onInput={set('callAfter')} />
          </Field>
        )}
        <Field id="c-tz" label={t('camp.timeZone')} optional>
          <input id="c-tz" value={f.timeZone} onInput={set('timeZone')} />
        </Field>
        <Field id="c-country" label={t('camp.country')} optional>
          <input id="c-country" value={f.country} onInput={set('country')} maxLength={2} />
        </Field>
        <Field id="c-start" label={t('camp.startAt')} optional>
          <input id="c-start" type="datetime-local" value={f.startAt} onInput={set('startAt')} />
        </Field>
        <p class="error" role="alert">
          {error}
        </p>
        <button type="submit" class="primary" id="create-campaign" disabled={busy}>
          {busy ? t('camp.creating') : t('camp.create')}
        </button>
      </form>
    </details>
  );
}

function CampaignList() {
  const [{ data, error }] = usePoll(() => api.campaigns(), 5000, []);
  const campaigns = data ? data.campaigns || [] : [];
  return (
    <section aria-labelledby="camp-title">
      <h1 id="camp-title">{t('nav.campaigns')}</h1>
      <NewCampaign onCreated={(c) => go('campaigns', c.id)} />
      {error && (
        <p class="error" role="alert">
          {errorText(t, error)}
        </p>
      )}
      {!data && !error && <p aria-busy="true">{t('loading')}</p>}
      {data && campaigns.length === 0 && <p>{t('camp.none')}</p>}
      {campaigns.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{t('camp.name')}</th>
                <th scope="col">{t('camp.channel')}</th>
                <th scope="col">{t('camp.state')}</th>
                <th scope="col">{t('camp.contacts')}</th>
                <th scope="col">{t('camp.created')}</th>
              </tr>
            </thead>
            <tbody>
              {campaigns.map((c) => (
                <tr>
                  <td>
                    <a href={`#/campaigns/${encodeURIComponent(c.id)}`}>{c.name}</a>
                  </td>
                  <td>{t(`camp.channel.${c.channel}`)}</td>
                  <td>
                    <CampaignState state={c.state} />
                  </td>
                  <td class="n">{fmtNumber(c.contacts)}</td>
                  <td>{fmtTime(c.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

// The API's reasons for a rejected row (shared/contact-sheets), in the
// console's language; one it does not know is shown as the API said it.
const REASONS = [
  [/^bad number: (.*)$/, 'reason.badNumber'],
  [/^duplicate of row (\d+)$/, 'reason.duplicate'],
  [/^unknown time zone: (.*)$/, 'reason.timeZone'],
  [/^unknown language: (.*)$/, 'reason.language'],
  [/^missing required variable: (.*)$/, 'reason.missing'],
  [/^opted out$/, 'reason.optedOut'],
];

function reasonText(reason) {
  for (const [re, key] of REASONS) {
    const m = re.exec(reason);
    if (m) return t(key, { v: m[1] ?? '' });
  }
  return reason;
}

function ValidationReport({ report }) {
  const rejected = report.rejected || [];
  return (
    <section class="report" aria-labelledby="report-title" id="validation-report">
      <h3 id="report-title">{t('camp.report.title')}</h3>
      <p>
        <strong class="accepted">{t('camp.report.accepted', { n: fmtNumber(report.accepted) })}</strong>
        {' · '}
        <strong class="rejected">{t('camp.report.rejected', { n: fmtNumber(rejected.length) })}</strong>
      </p>
      {report.columns && report.columns.length > 0 && <p>{t('camp.report.columns', { columns: report.columns.join(', ') })}</p>}
      {report.import && !report.import.done && <p>{t('camp.report.pending', { written: report.import.written, total: report.import.total })}</p>}
      {rejected.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{t('camp.report.row')}</th>
                <th scope="col">{t('camp.report.reason')}</th>
              </tr>
            </thead>
            <tbody>
              {rejected.map((r) => (
                <tr>
                  <td class="n">{r.row}</td>
                  <td lang={reasonText(r.reason) === r.reason ? 'en' : undefined}>{reasonText(r.reason)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function Upload({ c }) {
  const file = useRef(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [report, setReport] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const f = file.current && file.current.files[0];
    if (!f) return;
    setBusy(true);
    setError('');
    try {
      const xlsx = /\.xlsx$/i.test(f.name) || f.type === XLSX;
      setReport(await api.upload(c.id, f, xlsx ? XLSX : 'text/csv'));
      changed();
    } catch (err) {
      setError(errorText(t, err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      {c.state === 'draft' ? (
        <form class="upload" onSubmit={submit}>
          <label for="contacts-file">{t('camp.upload')}</label>
          <input id="contacts-file" type="file" ref={file} accept=".csv,.xlsx,text/csv" required />
          <button type="submit" class="primary" id="upload-contacts" disabled={busy}>
            {busy ? t('camp.uploading') : t('camp.uploadButton')}
          </button>
        </form>
      ) : (
        <p class="hint">{t('camp.uploadDraftOnly')}</p>
      )}
      <p class="error" role="alert">
        {error}
      </p>
      {report && <ValidationReport report={report} />}
    </>
  );
}

async function download(c, csv, setError) {
  setError('');
  try {
    const res = await api.report(c.id, csv);
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = `${c.spec ? c.spec.name : c.id}.${csv ? 'csv' : 'xlsx'}`.replace(/[\\/:*?"<>|]+/g, '_');
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    // On AWS a large report is a 303 to a download link in another bucket,
    // which the browser follows but may not read (no CORS there).
    setError(err instanceof ApiError && err.status === 0 ? t('camp.downloadLink') : errorText(t, err));
  }
}

function CampaignDetail({ id }) {
  const [{ data: c, error }] = usePoll(() => api.campaign(id), 4000, [id]);
  const [actError, setActError] = useState('');
  const [busy, setBusy] = useState('');
  // A refusal is about the campaign as it was: gone once it has changed.
  const version = c ? `${c.state}/${c.contacts}` : '';
  useEffect(() => setActError(''), [version]);
  const act = async (action) => {
    if (action === 'cancel' && !confirm(t('camp.cancelConfirm'))) return;
    setBusy(action);
    setActError('');
    try {
      await api.campaignAction(id, action);
      changed();
    } catch (err) {
      setActError(errorText(t, err));
    } finally {
      setBusy('');
    }
  };
  const counts = c ? c.counts || {} : {};
  const total = c ? c.contacts || 0 : 0;
  const done = FINISHED.reduce((n, s) => n + (counts[s] || 0), 0);
  return (
    <section aria-labelledby="campaign-title">
      <a class="back" href="#/campaigns">
        ← {t('camp.back')}
      </a>
      {error && (
        <p class="error" role="alert">
          {errorText(t, error)}
        </p>
      )}
      {!c && !error && <p aria-busy="true">{t('loading')}</p>}
      {c && (
        <>
          <h1 id="campaign-title">{c.spec.name}</h1>
          <p class="status-line">
            <CampaignState state={c.state} /> <span>{t(`camp.channel.${c.spec.channel}`)}</span>
            <span>
              {t('camp.contacts')}: {fmtNumber(total)}
            </span>
            {c.next_dial_at && <span>{t('camp.nextDial', { time: fmtTime(c.next_dial_at) })}</span>}
          </p>
          <div class="row">
            {c.state === 'draft' && (
              <button type="button" class="primary" id="camp-start" onClick={() => act('start')} disabled={!!busy}>
                {t('camp.start')}
              </button>
            )}
            {c.state === 'running' && (
              <button type="button" id="camp-pause" onClick={() => act('pause')} disabled={!!busy}>
                {t('camp.pause')}
              </button>
            )}
            {c.state === 'paused' && (
              <button type="button" class="primary" id="camp-resume" onClick={() => act('resume')} disabled={!!busy}>
                {t('camp.resume')}
              </button>
            )}
            {['draft', 'running', 'paused'].includes(c.state) && (
              <button type="button" class="danger" id="camp-cancel" onClick={() => act('cancel')} disabled={!!busy}>
                {t('camp.cancel')}
              </button>
            )}
          </div>
          <p class="error" role="alert">
            {actError}
          </p>
          {c.import && !c.import.done && <p>{t('camp.report.pending', { written: c.import.written, total: c.import.total })}</p>}
          <Upload c={c} />
          <section aria-labelledby="progress-title">
            <h2 id="progress-title">{t('camp.progress')}</h2>
            <label for="camp-progress" class="sr-only">
              {t('camp.progress')}
            </label>
            <progress id="camp-progress" max={Math.max(total, 1)} value={done} />
            <p>{t('camp.progressOf', { done: fmtNumber(done), total: fmtNumber(total) })}</p>
            <div class="table-wrap">
              <table class="counts">
                <tbody>
                  {CONTACT_STATES.map((s) => (
                    <tr>
                      <th scope="row">{t(`contact.${s}`)}</th>
                      <td class="n">{fmtNumber(counts[s] || 0)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
          <section aria-labelledby="download-title">
            <h2 id="download-title">{t('camp.download')}</h2>
            <div class="row">
              <button type="button" id="download-xlsx" onClick={() => download(c, false, setActError)}>
                {t('camp.downloadXlsx')}
              </button>
              <button type="button" id="download-csv" onClick={() => download(c, true, setActError)}>
                {t('camp.downloadCsv')}
              </button>
            </div>
          </section>
        </>
      )}
    </section>
  );
}

export function Campaigns({ id }) {
  return id ? <CampaignDetail id={id} /> : <CampaignList />;
}
