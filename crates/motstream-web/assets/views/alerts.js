// Alerts: the active ones grouped by team (firing first), then the newest transitions.
import { h, fill, extLink } from '../dom.js';
import { time, ago } from '../format.js';

export function mount(main) {
  main.append(
    h('h1', { id: 'view-title' }, 'Alerts'),
    h('section', { id: 'active', 'aria-label': 'Active alerts' }),
    h('h2', {}, 'Recent transitions'),
    h('section', { id: 'recent', 'aria-label': 'Recent transitions' }),
  );
}

function row(ctx, a, now) {
  return h('tr', { 'data-mot': a.mot, 'data-alert-state': a.state },
    h('td', {}, h('span', { class: 'badge ' + a.state }, (a.state === 'firing' ? '\u2716 ' : a.state === 'pending' ? '\u25B2 ' : '\u2714 ') + a.state)),
    h('td', {}, a.alertname, h('div', { class: 'muted' }, a.severity)),
    h('td', {}, ctx.mots.has(a.mot) ? h('a', { href: ctx.link('mot', a.mot), 'data-key': 'alert-' + a.alert_id + a.state }, a.mot) : a.mot,
      h('div', { class: 'muted' }, a.experience)),
    h('td', {}, a.owner),
    h('td', {}, time(a.at_ms), h('div', { class: 'muted' }, ago(a.at_ms, now))),
    h('td', {}, a.annotations?.summary || a.annotations?.description || '',
      a.annotations?.runbook_url ? h('div', {}, extLink(a.annotations.runbook_url, 'Runbook')) : null),
  );
}

function table(ctx, list, now) {
  return h('table', {}, h('thead', {}, h('tr', {}, ['State', 'Alert', 'MOT', 'Owner', 'When', 'Details'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, list.map((a) => row(ctx, a, now))));
}

export function update(main, ctx) {
  const now = ctx.status.now_ms;
  const active = [...(ctx.status.alerts?.active || [])];
  const byTeam = new Map();
  for (const a of active) {
    if (!byTeam.has(a.team)) byTeam.set(a.team, []);
    byTeam.get(a.team).push(a);
  }
  const teams = [...byTeam.keys()].sort();
  fill(main.querySelector('#active'), active.length
    ? teams.map((t) => {
      const list = byTeam.get(t).sort((a, b) => (a.state === b.state ? b.at_ms - a.at_ms : a.state === 'firing' ? -1 : 1));
      return [h('h2', {}, 'Team ' + t + ' \u00b7 ' + list.length + ' active'), table(ctx, list, now)];
    })
    : h('p', { class: 'muted', id: 'no-active' }, '\u2714 No active alerts.'));
  const recent = ctx.status.alerts?.recent || [];
  fill(main.querySelector('#recent'), recent.length ? table(ctx, recent, now) : h('p', { class: 'muted' }, 'No transitions yet.'));
}
