// MOT: what its owner needs to course-correct. SMOTO rate against target over time, error
// budget and burn rate, latency percentiles, top failure reasons, its channels, trend,
// moments of magic versus misery, and its alert history with the runbook and owner contact.
import { h, fill, extLink, contact } from '../dom.js';
import { count, pct, pp, num, duration, time, state, trend } from '../format.js';

const POINTS = 120;
let chart = null;
let series = null;
let seriesAt = 0;
let seriesKey = '';
let inflight = false;

export function mount(main, ctx) {
  chart = null;
  series = null;
  seriesKey = '';
  const c = ctx.mots.get(ctx.route.id);
  if (!c) {
    main.append(h('h1', { id: 'view-title' }, 'Unknown MOT'), h('p', {}, 'No MOT ', h('span', { class: 'code' }, ctx.route.id || ''), ' in the catalog. ', h('a', { href: ctx.link('unidentified') }, 'Unidentified MOTs')));
    return;
  }
  const x = ctx.experiences.get(c.experience);
  main.append(
    h('p', {}, h('a', { href: ctx.link('experience', c.experience) }, '\u2190 ' + (x ? x.name : c.experience))),
    h('h1', { id: 'view-title' }, c.name, ' ', h('span', { class: 'muted code' }, c.id), ' ', h('span', { id: 'mot-state' })),
    h('p', { class: 'muted' }, 'Owner: ' + c.owner.name + ' (' + c.owner.team + ') ', contact(c.owner.contact),
      ' \u00b7 type ' + c.type + ' \u00b7 target ' + pct(c.target, 1),
      c.runbook ? [' \u00b7 ', extLink(c.runbook, 'Runbook')] : null),
    h('section', { class: 'tiles', id: 'mot-tiles', 'aria-label': 'MOT numbers' }),
    h('h2', {}, 'SMOTO rate over time'),
    h('div', { class: 'chart', id: 'chart', role: 'img', 'aria-label': 'SMOTO rate per step against the target' }),
    h('p', { class: 'muted', id: 'chart-note' }),
    h('div', { class: 'split' },
      h('section', {}, h('h2', {}, 'Top failure reasons'), h('div', { id: 'reasons' })),
      h('section', {}, h('h2', {}, 'Channels'), h('div', { id: 'channels' }))),
    h('section', {}, h('h2', {}, 'Alerts'), h('div', { id: 'mot-alerts' })),
  );
}

function tile(k, v, s, attrs) {
  return h('div', Object.assign({ class: 'tile' }, attrs || {}), h('div', { class: 'k' }, k), h('div', { class: 'v' }, v), s ? h('div', { class: 's' }, s) : null);
}

async function loadSeries(ctx) {
  const key = ctx.route.id + '|' + ctx.route.window;
  if (inflight || (key === seriesKey && Date.now() - seriesAt < 2000)) return;
  inflight = true;
  try {
    const s = await ctx.fetchJson('/api/series?mot=' + encodeURIComponent(ctx.route.id) + '&window=' + ctx.route.window + '&points=' + POINTS);
    if (ctx.route.view !== 'mot' || ctx.route.id + '|' + ctx.route.window !== key) return;
    series = s;
    seriesKey = key;
    seriesAt = Date.now();
    draw(ctx);
  } catch (e) {
    fill(document.getElementById('chart-note'), 'Series unavailable: ' + e.message);
  } finally {
    inflight = false;
  }
}

function draw(ctx) {
  const el = document.getElementById('chart');
  if (!el || !series || !window.uPlot) return;
  const xs = [], rate = [], target = [], amount = [];
  for (const [from, ok, bad] of series.points) {
    xs.push(from / 1000);
    const n = ok === null ? null : ok + bad;
    amount.push(n);
    rate.push(n ? (100 * ok) / n : null);
    target.push(100 * series.target);
  }
  const data = [xs, rate, target, amount];
  if (!chart || chart.__key !== seriesKey) {
    el.replaceChildren();
    chart = new window.uPlot({
      width: Math.max(300, el.clientWidth - 16), height: 240,
      scales: { x: { time: true }, pct: { range: (u, lo, hi) => [Math.max(0, Math.min(lo ?? 0, series.target * 100) - 2), 100] }, n: {} },
      axes: [{}, { scale: 'pct', label: 'SMOTO %' }, { scale: 'n', side: 1, label: 'interactions', grid: { show: false } }],
      series: [{},
        { label: 'SMOTO rate', scale: 'pct', stroke: '#1f5fbf', width: 2, value: (u, v) => (v === null ? '\u2014' : v.toFixed(2) + '%') },
        { label: 'Target', scale: 'pct', stroke: '#b3261e', dash: [6, 4], width: 1.5, value: (u, v) => (v === null ? '\u2014' : v.toFixed(1) + '%') },
        { label: 'Interactions', scale: 'n', stroke: '#9aa5b1', width: 1, value: (u, v) => (v === null ? '\u2014' : String(v)) }],
    }, data, el);
    chart.__key = seriesKey;
  } else {
    chart.setData(data);
  }
  fill(document.getElementById('chart-note'), `${series.points.length} steps of ${duration(series.step_ms)} (buckets of ${duration(series.resolution_ms)}); the newest step is still filling.`);
}

export function update(main, ctx) {
  const c = ctx.mots.get(ctx.route.id);
  if (!c) return;
  const m = ctx.statusByMot.get(c.id) || { amount: 0, target: c.target, top_failure_reasons: [] };
  const alert = ctx.alertState.get(c.id);
  const st = state(m, alert);
  fill(main.querySelector('#mot-state'), h('span', { class: 'badge ' + st.level, id: 'mot-badge', 'data-state': st.level }, st.icon + ' ' + st.label));
  const perMisery = m.failures ? (m.successes / m.failures) : null;
  fill(main.querySelector('#mot-tiles'),
    tile('SMOTO rate', pct(m.smoto_rate), 'target ' + pct(m.target, 1) + ' \u00b7 alignment ' + pp(m.smoto_rate === null || m.smoto_rate === undefined ? null : m.smoto_rate - m.target), { 'data-field': 'smoto_rate' }),
    tile('Error budget left', pct(m.error_budget_remaining, 1), 'of the window\'s budget', { 'data-field': 'error_budget_remaining' }),
    tile('Burn rate', m.burn_rate === null || m.burn_rate === undefined ? '\u2014' : num(m.burn_rate, 2) + '\u00d7', '1\u00d7 spends the budget exactly', { 'data-field': 'burn_rate' }),
    tile('Magic vs misery', count(m.successes) + ' / ' + count(m.failures), perMisery === null ? 'no misery in the window' : num(perMisery, 1) + ' moments of magic per misery', { 'data-field': 'amount', 'data-amount': m.amount }),
    tile('Latency p50 / p90 / p99', duration(m.latency_p50_ms), duration(m.latency_p90_ms) + ' / ' + duration(m.latency_p99_ms)),
    tile('Trend', trend(m.trend), 'against the previous equal window'),
    tile('Impact', pct(m.impact, 1), 'share of the experience\'s weighted failures'),
    tile('Worst channel', m.worst_channel || '\u2014', m.late ? count(m.late) + ' late events' : 'no late events'),
  );
  const reasons = m.top_failure_reasons || [];
  fill(main.querySelector('#reasons'), reasons.length
    ? h('table', { id: 'reasons-table' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Reason'), h('th', { scope: 'col', class: 'n' }, 'Failures'), h('th', { scope: 'col', class: 'n' }, 'Share'))),
      h('tbody', {}, reasons.map((r) => h('tr', {}, h('td', { class: 'code' }, r.reason), h('td', { class: 'n' }, count(r.count)), h('td', { class: 'n' }, pct(m.failures ? r.count / m.failures : null, 1))))))
    : h('p', { class: 'muted' }, 'No failure reasons in the window.'));
  fill(main.querySelector('#channels'), channels(m));
  const all = ctx.status.alerts || {};
  const active = (all.active || []).filter((a) => a.mot === c.id);
  const recent = (all.recent || []).filter((a) => a.mot === c.id).slice(0, 20);
  fill(main.querySelector('#mot-alerts'),
    active.length ? active.map((a) => h('p', { class: 'card', 'data-alert': a.alertname },
      h('span', { class: 'badge ' + a.state }, (a.state === 'firing' ? '\u2716 ' : '\u25B2 ') + a.state), ' ', a.alertname, ' (' + a.severity + ') since ' + time(a.at_ms),
      a.annotations?.runbook_url ? [' \u00b7 ', extLink(a.annotations.runbook_url, 'Runbook')] : null,
      ' \u00b7 owner ', contact(c.owner.contact) || c.owner.name)) : h('p', { class: 'muted' }, '\u2714 No active alert.'),
    recent.length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'When'), h('th', { scope: 'col' }, 'Alert'), h('th', { scope: 'col' }, 'State'))),
      h('tbody', {}, recent.map((a) => h('tr', {}, h('td', {}, time(a.at_ms)), h('td', {}, a.alertname + ' (' + a.severity + ')'), h('td', {}, h('span', { class: 'badge ' + a.state }, a.state)))))) : h('p', { class: 'muted' }, 'No alert history.'));
  if (m.warming) main.querySelector('#mot-tiles').prepend(h('p', { class: 'warn' }, '\u26A0 Rebuilding from Kafka: numbers are incomplete.'));
  loadSeries(ctx);
}

// The channel table: the top channels by interactions, then the rest as "Other", with the
// bounds that put a channel there said in words.
function channels(m) {
  const list = m.channels || [];
  const other = m.channels_other || { amount: 0, successes: 0, failures: 0 };
  if (!list.length && !other.amount) return h('p', { class: 'muted' }, 'No channel named in the window.');
  const row = (name, c, cls) => h('tr', { 'data-channel': name, class: cls },
    h('td', { class: cls === 'other' ? null : 'code' }, name),
    h('td', { class: 'n', 'data-field': 'amount' }, count(c.amount)),
    h('td', { class: 'n', 'data-field': 'smoto_rate' }, pct(c.amount ? c.successes / c.amount : null)),
    h('td', { class: 'n', 'data-field': 'failures' }, count(c.failures)),
    h('td', {}, name === m.worst_channel ? '\u25BC worst' : ''));
  return h('table', { id: 'channels-table' },
    h('caption', { class: 'muted' }, 'Over the window at detail resolution, most interactions first, at most 10. Other: the rest, and channels beyond what is tallied (8 distinct per detail bucket, 64 per partition). Worst: the lowest SMOTO rate with at least the minimum interactions.'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Channel'), h('th', { scope: 'col', class: 'n' }, 'Interactions'), h('th', { scope: 'col', class: 'n' }, 'SMOTO rate'), h('th', { scope: 'col', class: 'n' }, 'Failures'), h('th', { scope: 'col' }, ''))),
    h('tbody', {}, list.map((c) => row(c.channel, c, null)), other.amount ? row('Other', other, 'other') : null));
}
