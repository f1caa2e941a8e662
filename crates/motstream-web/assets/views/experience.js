// Experience: its SCO numbers and the MOT table with the seven seed metrics (Amount, Type,
// Ownership, Alignment, Trend, Ratio, Impact), in journey order by default, each row's state
// against its target shown by colour, icon and words. Search, sort and paging keep a
// thousand MOTs responsive: only one page of rows is ever in the DOM. Below it, the journey
// funnel (funnel.js).
import { h, fill, contact } from '../dom.js';
import { count, pct, pp, num, state, trend, duration } from '../format.js';
import * as funnel from './funnel.js';
import * as pager from './pager.js';

const COLUMNS = [
  ['state', 'State', false], ['mot', 'MOT', false], ['amount', 'Amount', true],
  ['type', 'Type', false], ['owner', 'Ownership', false], ['alignment', 'Alignment', true],
  ['trend', 'Trend', true], ['ratio', 'Ratio', true], ['impact', 'Impact', true],
  ['burn', 'Burn rate', true],
];
const RANK = { red: 0, amber: 1, none: 2, green: 3 };

export function mount(main, ctx) {
  const x = ctx.experiences.get(ctx.route.id);
  if (!x) {
    main.append(h('h1', { id: 'view-title' }, 'Unknown experience'), h('p', {}, 'No experience ', h('span', { class: 'code' }, ctx.route.id || ''), ' in the catalog. ', h('a', { href: ctx.link('enterprise') }, 'Back to Enterprise')));
    return;
  }
  const search = h('input', { type: 'search', id: 'search', placeholder: 'Search MOT, owner, team, type', 'aria-label': 'Search MOTs', 'data-key': 'search' });
  search.value = ctx.route.query.get('q') || '';
  search.addEventListener('input', () => ctx.setQuery({ q: search.value, page: null }));
  const head = h('tr', {}, COLUMNS.map(([key, label, numeric]) => {
    const b = h('button', { type: 'button', 'data-key': 'sort-' + key }, label);
    b.addEventListener('click', () => {
      const [cur, dir] = (ctx.route.query.get('sort') || '').split(':');
      ctx.setQuery({ sort: key + ':' + (cur === key && dir === 'asc' ? 'desc' : 'asc'), page: null });
    });
    return h('th', { scope: 'col', class: numeric ? 'n' : null, 'data-col': key }, b);
  }));
  const [prev, next] = pager.buttons(ctx, 'page', '');
  main.append(
    h('p', {}, h('a', { href: ctx.link('enterprise') }, '\u2190 Enterprise')),
    h('h1', { id: 'view-title' }, x.name),
    h('p', { class: 'muted' }, 'Experience Manager: ', x.manager.name + ' (' + x.manager.team + ') ', contact(x.manager.contact),
      ' \u00b7 SCO when ', h('span', { class: 'code' }, x.sco), ' succeeds'),
    h('section', { class: 'tiles', id: 'exp-tiles', 'aria-label': 'Experience numbers' }),
    h('section', { id: 'journey', 'aria-label': 'Journeys' }),
    h('h2', {}, 'Moments of Truth'),
    h('div', { class: 'toolbar' }, search, h('span', { id: 'rows', class: 'muted', 'aria-live': 'polite' }), prev, next),
    h('table', { id: 'mot-table' }, h('caption', { class: 'muted' }, 'Journey order unless sorted; Alignment is SMOTO rate minus target, Trend against the previous equal window, Impact the share of the experience\'s weighted failures.'),
      h('thead', {}, head), h('tbody', {})),
    funnel.mount(ctx),
  );
}

function tile(k, v, s, field) {
  return h('div', { class: 'tile', 'data-field': field }, h('div', { class: 'k' }, k), h('div', { class: 'v' }, v), s ? h('div', { class: 's' }, s) : null);
}

function rowsFor(ctx, x) {
  return x.mots.map((id, order) => {
    const c = ctx.mots.get(id) || { id, name: id, owner: {} };
    const m = ctx.statusByMot.get(id) || { mot: id, amount: 0, target: c.target };
    const st = state(m, ctx.alertState.get(id));
    return {
      id, order, c, m, st,
      alignment: m.smoto_rate === null || m.smoto_rate === undefined ? null : m.smoto_rate - m.target,
    };
  });
}

const SORT = {
  state: (r) => RANK[r.st.level], mot: (r) => r.c.name.toLowerCase(), amount: (r) => r.m.amount,
  type: (r) => r.c.type || '', owner: (r) => (r.c.owner.name || '').toLowerCase(),
  alignment: (r) => r.alignment, trend: (r) => r.m.trend, ratio: (r) => r.m.smoto_rate,
  impact: (r) => r.m.impact, burn: (r) => r.m.burn_rate,
};

export function update(main, ctx) {
  const x = ctx.experiences.get(ctx.route.id);
  if (!x) return;
  const e = ctx.statusByExp.get(x.id) || {};
  fill(main.querySelector('#exp-tiles'),
    tile('SCO rate', pct(e.sco_rate), 'journeys ending in a Successful Customer Outcome', 'sco_rate'),
    tile('Journeys started', count(e.journeys_started), null, 'journeys_started'),
    tile('Completed', count(e.journeys_completed), null, 'journeys_completed'),
    tile('Abandoned', count(e.journeys_abandoned), 'idle past ' + duration(e.journey_timeout_ms), 'journeys_abandoned'),
    tile('In flight', count(e.journeys_in_flight), count(e.journeys_stalled) + ' stalled after a failure', 'journeys_in_flight'),
    tile('MOTs per SCO', num(e.mots_per_sco_p50, 0), 'median; p95 ' + num(e.mots_per_sco_p95, 0) + '; optimum one per MOT', 'mots_per_sco'),
    tile('SMOTO rate', pct(e.smoto_rate), count(e.amount) + ' interactions', 'smoto_rate'),
  );
  const ended = (e.journeys_completed || 0) + (e.journeys_abandoned || 0);
  fill(main.querySelector('#journey'),
    e.warming ? h('p', { class: 'warn' }, '\u26A0 Rebuilding from Kafka: numbers are incomplete.') : null,
    h('div', { class: 'funnel', 'aria-label': 'Journey outcomes' },
      h('div', {}, 'Started: ' + count(e.journeys_started)),
      h('div', {}, 'Reached SCO: ' + count(e.journeys_completed) + (ended ? ' (' + pct(e.journeys_completed / ended, 1) + ' of ended)' : '')),
      h('div', {}, 'Abandoned: ' + count(e.journeys_abandoned) + (ended ? ' (' + pct(e.journeys_abandoned / ended, 1) + ' of ended)' : ''))));
  funnel.update(main, ctx, e);

  let rows = rowsFor(ctx, x);
  const q = (ctx.route.query.get('q') || '').trim().toLowerCase();
  if (q) {
    rows = rows.filter((r) => [r.id, r.c.name, r.c.type, r.c.owner.name, r.c.owner.team]
      .some((s) => (s || '').toLowerCase().includes(q)));
  }
  const [key, dir] = (ctx.route.query.get('sort') || '').split(':');
  if (SORT[key]) {
    const f = SORT[key];
    const sign = dir === 'desc' ? -1 : 1;
    // Missing values (no data) sort last either way.
    rows.sort((a, b) => {
      const va = f(a), vb = f(b);
      if (va === null || va === undefined) return vb === null || vb === undefined ? a.order - b.order : 1;
      if (vb === null || vb === undefined) return -1;
      return (va < vb ? -1 : va > vb ? 1 : 0) * sign || a.order - b.order;
    });
  }
  for (const th of main.querySelectorAll('th[data-col]')) {
    th.setAttribute('aria-sort', th.dataset.col === key ? (dir === 'desc' ? 'descending' : 'ascending') : 'none');
  }
  const { shown } = pager.page(main, ctx, 'page', '', rows, { noun: 'Rows', none: 'No MOT matches.', label: '#rows' });
  fill(main.querySelector('#mot-table tbody'), shown.map((r) => h('tr', { class: 'state-' + r.st.level, 'data-mot': r.id, 'data-state': r.st.level },
    h('td', {}, h('span', { class: 'badge ' + r.st.level }, r.st.icon + ' ' + r.st.label)),
    h('td', {}, h('a', { href: ctx.link('mot', r.id), 'data-key': 'mot-' + r.id }, r.c.name), h('div', { class: 'muted code' }, r.id)),
    h('td', { class: 'n', 'data-field': 'amount' }, count(r.m.amount)),
    h('td', {}, r.c.type || ''),
    h('td', {}, r.c.owner.name || '', h('div', { class: 'muted' }, r.c.owner.team || '')),
    h('td', { class: 'n', 'data-field': 'alignment' }, pp(r.alignment)),
    h('td', { class: 'n', 'data-field': 'trend' }, trend(r.m.trend)),
    h('td', { class: 'n', 'data-field': 'ratio' }, h('span', { class: 'v' }, pct(r.m.smoto_rate)), h('div', { class: 'muted' }, 'target ' + pct(r.m.target, 1))),
    h('td', { class: 'n', 'data-field': 'impact' }, pct(r.m.impact, 1)),
    h('td', { class: 'n', 'data-field': 'burn' }, r.m.burn_rate === null || r.m.burn_rate === undefined ? '\u2014' : num(r.m.burn_rate, 2) + '\u00d7'),
  )));
}
