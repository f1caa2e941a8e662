// The dashboard's shell: hash routes (deep links), the window selector, the live status feed
// (Server-Sent Events, one status document a second) and the views that render it.
import { h, fill } from './dom.js';
import { duration, time, zone } from './format.js';
import * as enterprise from './views/enterprise.js';
import * as experience from './views/experience.js';
import * as mot from './views/mot.js';
import * as alerts from './views/alerts.js';
import * as unidentified from './views/unidentified.js';

const VIEWS = { enterprise, experience, mot, alerts, unidentified };
const WINDOWS = ['5m', '1h', '24h', '3d'];
// The token, when the service has one, is kept from the page's own URL (/?token=...).
const TOKEN = new URLSearchParams(location.search).get('token');

const main = document.getElementById('main');
const winSel = document.getElementById('window');
const resolution = document.getElementById('resolution');
const live = document.getElementById('live');

const ctx = {
  catalog: null,
  status: null,
  route: null,
  /** Builds a hash link to a view, keeping the window. */
  link(view, id, extra) {
    const q = new URLSearchParams(Object.assign({ window: ctx.route.window }, extra || {}));
    return '#/' + view + (id !== undefined ? '/' + encodeURIComponent(id) : '') + '?' + q;
  },
  /** Changes the current route's query (search, sort, page) without a history entry. */
  setQuery(patch) {
    const q = new URLSearchParams(ctx.route.query);
    for (const [k, v] of Object.entries(patch)) {
      if (v === null || v === '' || v === undefined) q.delete(k);
      else q.set(k, v);
    }
    q.set('window', ctx.route.window);
    const hash = '#/' + ctx.route.view + (ctx.route.id !== undefined ? '/' + encodeURIComponent(ctx.route.id) : '') + '?' + q;
    history.replaceState(null, '', location.pathname + location.search + hash);
    ctx.route.query = q;
    render();
  },
  fetchJson,
  mots: new Map(),
  experiences: new Map(),
};

function withToken(url) {
  if (!TOKEN) return url;
  return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(TOKEN);
}

async function fetchJson(url) {
  const headers = TOKEN ? { Authorization: 'Bearer ' + TOKEN } : {};
  const r = await fetch(url, { headers, cache: 'no-store' });
  if (!r.ok) throw new Error(url + ': ' + r.status + ' ' + (await r.text()));
  return r.json();
}

function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs] = raw.split('?');
  const parts = (path || 'enterprise').split('/');
  const view = VIEWS[parts[0]] ? parts[0] : 'enterprise';
  const query = new URLSearchParams(qs || '');
  let window = query.get('window');
  if (!WINDOWS.includes(window)) window = '5m';
  let id;
  if (parts.length > 1) {
    try { id = decodeURIComponent(parts.slice(1).join('/')); } catch { id = undefined; }
  }
  return { view, id, query, window };
}

let source = null;
let sourceWindow = null;
let lastUpdate = 0;

function connect(window) {
  if (source && sourceWindow === window) return;
  if (source) source.close();
  sourceWindow = window;
  ctx.status = null;
  source = new EventSource(withToken('/api/events?window=' + encodeURIComponent(window)));
  source.addEventListener('status', (ev) => {
    if (!performance.getEntriesByName('first-status').length) performance.mark('first-status');
    ctx.status = JSON.parse(ev.data);
    lastUpdate = Date.now();
    index();
    render();
  });
  source.addEventListener('problem', (ev) => {
    fill(live, 'Problem: ' + JSON.parse(ev.data).error);
  });
  source.onerror = () => fill(live, '\u26A0 Reconnecting\u2026');
}

/** Per MOT and per experience: its status row, by id, for the views. */
function index() {
  ctx.statusByMot = new Map((ctx.status.mots || []).map((m) => [m.mot, m]));
  ctx.statusByExp = new Map((ctx.status.experiences || []).map((e) => [e.experience, e]));
  const alertState = new Map();
  for (const a of ctx.status.alerts?.active || []) {
    const prev = alertState.get(a.mot);
    if (a.state === 'firing' || !prev) alertState.set(a.mot, a.state);
  }
  ctx.alertState = alertState;
}

let mounted = null;

function render() {
  if (!ctx.catalog) return;
  const route = ctx.route;
  const view = VIEWS[route.view];
  const key = route.view + '/' + (route.id ?? '');
  if (mounted !== key) {
    mounted = key;
    main.replaceChildren();
    view.mount(main, ctx);
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.view === route.view) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
      a.href = '#/' + a.dataset.view + '?window=' + route.window;
    }
  }
  if (!ctx.status) {
    fill(live, 'Connecting\u2026');
    return;
  }
  const res = ctx.status.mots?.[0]?.resolution_ms;
  fill(resolution, res ? 'resolution ' + duration(res) : '');
  fill(live, h('span', { class: 'dot', 'aria-hidden': 'true' }, '\u25CF'),
    ' Live, as of ' + time(ctx.status.now_ms));
  // Keep keyboard focus on the same control across the once-a-second refresh.
  const focused = document.activeElement?.dataset?.key;
  const t0 = performance.now();
  view.update(main, ctx);
  performance.measure('render:' + route.view, { start: t0, end: performance.now() });
  if (!performance.getEntriesByName('first-render').length) performance.mark('first-render');
  document.body.dataset.rendered = String(ctx.status.now_ms);
  if (focused) {
    const el = [...main.querySelectorAll('[data-key]')].find((e) => e.dataset.key === focused);
    if (el && el !== document.activeElement) el.focus();
  }
}

function onRoute() {
  const prev = ctx.route;
  ctx.route = parseRoute();
  winSel.value = ctx.route.window;
  document.title = 'motstream \u2014 ' + ctx.route.view;
  connect(ctx.route.window);
  if (!prev || prev.view !== ctx.route.view || prev.id !== ctx.route.id) {
    mounted = null;
    // A new view opens at its top, as a followed link would; the hash change alone keeps the
    // previous view's scroll (a funnel row's link landed mid-way down the MOT view).
    window.scrollTo(0, 0);
    main.focus({ preventScroll: true });
  }
  render();
}

winSel.addEventListener('change', () => {
  const r = ctx.route;
  const q = new URLSearchParams(r.query);
  q.set('window', winSel.value);
  location.hash = '#/' + r.view + (r.id !== undefined ? '/' + encodeURIComponent(r.id) : '') + '?' + q;
});

// A stale feed says so instead of showing old numbers as live.
setInterval(() => {
  if (lastUpdate && Date.now() - lastUpdate > 5000) fill(live, '\u26A0 No update for ' + duration(Date.now() - lastUpdate));
}, 1000);

document.getElementById('zone').textContent = 'Times in ' + zone();

async function start() {
  try {
    ctx.catalog = await fetchJson('/api/catalog');
    performance.mark('catalog');
  } catch (e) {
    fill(main, h('p', { class: 'error', role: 'alert' }, 'Cannot load the catalog: ' + e.message));
    return;
  }
  for (const m of ctx.catalog.mots) ctx.mots.set(m.id, m);
  for (const e of ctx.catalog.experiences) ctx.experiences.set(e.id, e);
  window.addEventListener('hashchange', onRoute);
  onRoute();
}

start();
