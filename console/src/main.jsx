import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { request, session, signIn, signOut, simulatorAvailable, ApiError, errorText } from './api.js';
import { LANGS, lang, setLang, t } from './i18n.js';
import { useSignal } from './signal.js';
import { useRoute } from './hooks.js';
import { Conversations } from './conversations.jsx';
import { Campaigns } from './campaigns.jsx';
import { Numbers } from './numbers.jsx';
import { Simulator } from './simulator.jsx';
import './style.css';

const LANG_NAMES = { es: 'Español', en: 'English', pt: 'Português' };

function LangSwitch() {
  return (
    <label class="lang">
      <span>{t('lang.label')}</span>
      <select id="lang" value={lang.value} onChange={(e) => setLang(e.currentTarget.value)}>
        {LANGS.map((l) => (
          <option value={l} lang={l}>
            {LANG_NAMES[l]}
          </option>
        ))}
      </select>
    </label>
  );
}

function SignIn() {
  const [key, setKey] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const input = useRef(null);
  useEffect(() => input.current && input.current.focus(), []);
  const submit = async (e) => {
    e.preventDefault();
    const k = key.trim();
    if (!k) return;
    setBusy(true);
    setError('');
    try {
      // The key is checked against a read route: the authorizer decides.
      await request('/admin/conversations?limit=1', { key: k, keepSession: true });
      signIn(k);
    } catch (err) {
      setError(err instanceof ApiError && (err.status === 401 || err.status === 403) ? t('signin.refused') : errorText(t, err));
      setBusy(false);
      input.current && input.current.focus();
    }
  };
  return (
    <main id="main" class="signin">
      <div class="card">
        <h1>{t('signin.title')}</h1>
        <form onSubmit={submit}>
          <label for="admin-key">{t('signin.key')}</label>
          <input
            id="admin-key"
            ref={input}
            type="password"
            autocomplete="current-password"
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
            aria-describedby="key-hint key-error"
            aria-invalid={error ? 'true' : undefined}
            required
          />
          <p id="key-hint" class="hint">
            {t('signin.hint')}
          </p>
          <p id="key-error" class="error" role="alert">
            {error}
          </p>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? t('signin.checking') : t('signin.submit')}
          </button>
        </form>
        <LangSwitch />
      </div>
    </main>
  );
}

const SECTIONS = ['conversations', 'campaigns', 'numbers', 'simulator'];

function Shell() {
  const route = useRoute();
  const [simulator, setSimulator] = useState(false);
  useEffect(() => {
    simulatorAvailable().then(setSimulator);
  }, []);
  const section = SECTIONS.includes(route[0]) ? route[0] : 'conversations';
  const sections = SECTIONS.filter((s) => s !== 'simulator' || simulator);
  let view;
  if (section === 'campaigns') view = <Campaigns id={route[1]} />;
  else if (section === 'numbers') view = <Numbers />;
  else if (section === 'simulator' && simulator) view = <Simulator />;
  else view = <Conversations id={section === 'conversations' ? route[1] : undefined} />;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        {t('app.skip')}
      </a>
      <header class="top">
        <span class="brand" aria-hidden="true">Charla</span>
        <nav aria-label={t('nav.label')}>
          <ul>
            {sections.map((s) => (
              <li>
                <a href={`#/${s}`} aria-current={s === section ? 'page' : undefined} id={`nav-${s}`}>
                  {t(`nav.${s}`)}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="tools">
          <LangSwitch />
          <button type="button" onClick={signOut} id="signout">
            {t('signout')}
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {view}
      </main>
    </>
  );
}

function App() {
  const l = useSignal(lang);
  const key = useSignal(session);
  useEffect(() => {
    document.documentElement.lang = l;
    document.title = t('app.title');
  }, [l]);
  return key ? <Shell /> : <SignIn />;
}

render(<App />, document.getElementById('app'));
