// The admin API, same-origin: the runner serves the console beside
// /admin/*, and CloudFront puts both behind one host on AWS (no CORS).
import { signal } from './signal.js';

const KEY = 'charla.adminKey';

function readKey() {
  try {
    return sessionStorage.getItem(KEY) || '';
  } catch (_) {
    return '';
  }
}

// The admin key, for this tab's session only (sessionStorage), never
// localStorage: closing the tab forgets it.
export const session = signal(readKey());

export function signIn(key) {
  try {
    sessionStorage.setItem(KEY, key);
  } catch (_) {
    // Kept in memory only.
  }
  session.value = key;
}

export function signOut() {
  try {
    sessionStorage.removeItem(KEY);
  } catch (_) {
    // Nothing kept.
  }
  session.value = '';
}

export class ApiError extends Error {
  constructor(status, message, method = 'GET') {
    super(message);
    this.status = status;
    this.method = method;
  }
}

// A key that may read but not write (admin:read) is refused changes with a
// 403: that is not a reason to sign the tab out.
const refusedWrite = (e) => e.status === 403 && e.method !== 'GET' && e.method !== 'HEAD';

async function errorOf(res, method) {
  let message = res.statusText || '';
  try {
    const body = await res.json();
    message = body.error || body.message || message;
  } catch (_) {
    // Not JSON: keep the status text.
  }
  return new ApiError(res.status, message, method);
}

// One request with the session's key. 401/403 sign the tab out unless
// `keepSession` (the sign-in check itself).
export async function request(path, { method = 'GET', body, headers = {}, key, keepSession = false, raw = false } = {}) {
  const h = { ...headers, Authorization: `Bearer ${key ?? session.value}` };
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && typeof body !== 'string') {
    payload = JSON.stringify(body);
    h['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: payload, cache: 'no-store' });
  } catch (_) {
    throw new ApiError(0, '');
  }
  if (!res.ok) {
    const err = await errorOf(res, method);
    if ((res.status === 401 || res.status === 403) && !refusedWrite(err) && !keepSession) signOut();
    throw err;
  }
  if (raw) return res;
  return res.json();
}

export const api = {
  conversations: (cursor) =>
    request(`/admin/conversations?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
  conversation: (id, cursor) =>
    request(`/admin/conversations/${encodeURIComponent(id)}?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
  act: (id, action, body) =>
    request(`/admin/conversations/${encodeURIComponent(id)}/${action}`, { method: 'POST', body: body ?? {} }),
  campaigns: () => request('/admin/campaigns'),
  campaign: (id) => request(`/admin/campaigns/${encodeURIComponent(id)}`),
  createCampaign: (spec) => request('/admin/campaigns', { method: 'POST', body: spec }),
  campaignAction: (id, action) => request(`/admin/campaigns/${encodeURIComponent(id)}/${action}`, { method: 'POST', body: {} }),
  upload: (id, file, contentType) =>
    request(`/admin/campaigns/${encodeURIComponent(id)}/contacts`, {
      method: 'PUT',
      body: file,
      headers: { 'Content-Type': contentType },
    }),
  report: (id, csv) =>
    request(`/admin/campaigns/${encodeURIComponent(id)}/report`, {
      raw: true,
      headers: { Accept: csv ? 'text/csv' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' },
    }),
  stats: (days) => request(`/admin/stats?days=${days}`),
  simulate: (body) => request('/local/simulate', { method: 'POST', body }),
};

// Whether this server has the local chat simulator (the one-process
// runner does; the static site on AWS does not).
export async function simulatorAvailable() {
  try {
    const res = await fetch('/local/simulate', { cache: 'no-store' });
    if (!res.ok) return false;
    const body = await res.json();
    return body.simulator === true;
  } catch (_) {
    return false;
  }
}

// The bot's answers to one simulated user, from the local outbox (a long
// poll: waits up to `waitMs` for something new).
export async function outbox(userId, after, waitMs, signal) {
  const res = await fetch(`/local/outbox?user_id=${encodeURIComponent(userId)}&after=${after}&wait_ms=${waitMs}`, {
    cache: 'no-store',
    signal,
  });
  if (!res.ok) throw new ApiError(res.status, res.statusText);
  const body = await res.json();
  return body.entries || [];
}

export function errorText(t, e) {
  if (!(e instanceof ApiError)) return String(e && e.message ? e.message : e);
  if (e.status === 0) return t('error.network');
  if (refusedWrite(e)) return t('error.readOnly');
  if (e.status === 401 || e.status === 403) return t('error.signedout');
  return t('error.generic', { status: e.status, message: e.message });
}
