import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText, outbox } from './api.js';
import { t } from './i18n.js';

// Be a WhatsApp user: the runner signs each message as Meta would and puts
// it through the real webhook path (POST /local/simulate); the bot's
// answers come from the local outbox (a long poll, as `local chat` does).
export function Simulator() {
  const [userId, setUserId] = useState('5491155550100');
  const [name, setName] = useState('Ana');
  const [active, setActive] = useState('5491155550100');
  const [text, setText] = useState('');
  const [log, setLog] = useState([]);
  const [error, setError] = useState('');
  const end = useRef(null);

  useEffect(() => {
    if (!/^\d{8,15}$/.test(active)) return undefined;
    const stop = new AbortController();
    let after = 0;
    (async () => {
      try {
        // Start after what the outbox already holds for this user.
        const old = await outbox(active, 0, 0, stop.signal);
        after = old.reduce((m, e) => Math.max(m, e.seq || 0), 0);
      } catch (_) {
        return;
      }
      while (!stop.signal.aborted) {
        try {
          const entries = await outbox(active, after, 20000, stop.signal);
          for (const e of entries) after = Math.max(after, e.seq || 0);
          const bot = entries.filter((e) => e.message).map((e) => ({ from: 'bot', seq: e.seq, message: e.message }));
          if (bot.length) setLog((l) => l.concat(bot));
        } catch (e) {
          if (stop.signal.aborted) return;
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
    })();
    setLog([]);
    return () => stop.abort();
  }, [active]);

  useEffect(() => {
    if (end.current && end.current.scrollIntoView) end.current.scrollIntoView({ block: 'nearest' });
  }, [log.length]);

  const send = async (payload, shown) => {
    setError('');
    if (active !== userId) setActive(userId);
    try {
      await api.simulate({ user_id: userId, name: name.trim() || 'Ana', ...payload });
      setLog((l) => l.concat([{ from: 'you', text: shown, key: `y${Date.now()}${Math.random()}` }]));
    } catch (e) {
      setError(errorText(t, e));
    }
  };

  return (
    <section aria-labelledby="sim-title" class="simulator">
      <h1 id="sim-title">{t('sim.title')}</h1>
      <p class="hint">{t('sim.intro')}</p>
      <div class="row sim-who">
        <label>
          <span>{t('sim.number')}</span>
          <input
            id="sim-number"
            inputMode="numeric"
            pattern="\d{8,15}"
            value={userId}
            onInput={(e) => setUserId(e.currentTarget.value.replace(/[^\d]/g, ''))}
            onBlur={() => setActive(userId)}
          />
        </label>
        <label>
          <span>{t('sim.name')}</span>
          <input id="sim-name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
      </div>
      <ol class="phone" aria-live="polite" aria-label={t('sim.title')}>
        {log.length === 0 && <li class="hint">{t('sim.empty')}</li>}
        {log.map((x) => (x.from === 'you' ? <li key={x.key} class="msg inbound sim-you"><div class="bubble"><span class="sr-only">{t('sim.you')}: </span>{x.text}</div></li> : <BotMessage key={x.seq} m={x.message} send={send} />))}
        <li ref={end} class="end" aria-hidden="true" />
      </ol>
      <form
        class="sim-form"
        onSubmit={(e) => {
          e.preventDefault();
          const v = text.trim();
          if (!v) return;
          setText('');
          send({ text: v }, v);
        }}
      >
        <label for="sim-text" class="sr-only">
          {t('sim.message')}
        </label>
        <input id="sim-text" value={text} onInput={(e) => setText(e.currentTarget.value)} placeholder={t('sim.message')} autocomplete="off" />
        <button type="submit" class="primary" id="sim-send">
          {t('sim.send')}
        </button>
      </form>
      <p class="error" role="alert">
        {error}
      </p>
    </section>
  );
}

function BotMessage({ m, send }) {
  let body = null;
  let choices = null;
  if (m.kind === 'text') body = m.body;
  else if (m.kind === 'buttons') {
    body = m.body;
    choices = (
      <div class="choices">
        {(m.buttons || []).map((b) => (
          <button type="button" class="choice" onClick={() => send({ button: { id: b.id, title: b.title } }, b.title)}>
            {b.title}
          </button>
        ))}
      </div>
    );
  } else if (m.kind === 'list') {
    body = m.body;
    const rows = (m.sections || []).flatMap((s) => s.rows || []);
    choices = (
      <fieldset class="choices list-rows">
        <legend>{m.button || t('sim.listRows')}</legend>
        {rows.map((r) => (
          <button type="button" class="choice" onClick={() => send({ list: { id: r.id, title: r.title, description: r.description || '' } }, r.title)}>
            {r.title}
            {r.description && <span class="desc">{r.description}</span>}
          </button>
        ))}
      </fieldset>
    );
  } else if (m.kind === 'template') body = t('sim.template', { name: m.name });
  else if (m.kind === 'reaction') body = t('sim.reaction', { emoji: m.emoji });
  else body = JSON.stringify(m);
  return (
    <li class="msg outbound sim-bot">
      <div class="bubble">
        <span class="sr-only">{t('sim.bot')}: </span>
        <p class="text">{body}</p>
        {choices}
      </div>
    </li>
  );
}
