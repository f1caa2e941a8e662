// Enterprise: every experience at a glance (SCO rate, journeys, MOTs per SCO, its worst MOTs,
// firing alerts) and the deployment-wide totals, with the unidentified MOTs count.
import { h, fill } from '../dom.js';
import { count, pct, num, state } from '../format.js';

export function mount(main) {
  main.append(
    h('h1', { id: 'view-title' }, 'Enterprise'),
    h('section', { class: 'tiles', id: 'totals', 'aria-label': 'Totals' }),
    h('section', { class: 'grid', id: 'experiences', 'aria-label': 'Experiences' }),
  );
}

function tile(k, v, s, key) {
  return h('div', { class: 'tile', 'data-key': key }, h('div', { class: 'k' }, k), h('div', { class: 'v' }, v), s ? h('div', { class: 's' }, s) : null);
}

function badge(st) {
  return h('span', { class: 'badge ' + st.level }, st.icon + ' ' + st.label);
}

export function update(main, ctx) {
  const s = ctx.status;
  const mots = s.mots || [];
  const levels = { red: 0, amber: 0, green: 0, none: 0 };
  for (const m of mots) levels[state(m, ctx.alertState.get(m.mot)).level]++;
  const amount = mots.reduce((a, m) => a + m.amount, 0);
  const ok = mots.reduce((a, m) => a + m.successes, 0);
  const firing = (s.alerts?.active || []).filter((a) => a.state === 'firing');
  const unid = (s.unidentified || []).length;
  fill(main.querySelector('#totals'),
    tile('Interactions', count(amount), 'in the window'),
    tile('SMOTO rate', pct(amount ? ok / amount : null), 'moments of magic'),
    tile('MOTs', count(mots.length), `\u2716 ${levels.red} breaching \u00b7 \u25B2 ${levels.amber} at risk \u00b7 \u2714 ${levels.green} on target`),
    h('a', { href: ctx.link('alerts'), class: 'tile', 'data-key': 'tile-alerts', id: 'firing-count' },
      h('div', { class: 'k' }, 'Firing alerts'), h('div', { class: 'v' }, count(firing.length)),
      h('div', { class: 's' }, `${(s.alerts?.active || []).length - firing.length} pending`)),
    h('a', { href: ctx.link('unidentified'), class: 'tile', 'data-key': 'tile-unid', id: 'unidentified-count' },
      h('div', { class: 'k' }, 'Unidentified MOTs'), h('div', { class: 'v' }, count(unid)),
      h('div', { class: 's' }, 'ids not in the catalog')),
  );
  const cards = ctx.catalog.experiences.map((x) => {
    const e = ctx.statusByExp.get(x.id) || {};
    const own = mots.filter((m) => m.experience === x.id);
    const worst = own.filter((m) => m.amount > 0)
      .sort((a, b) => (b.burn_rate ?? 0) - (a.burn_rate ?? 0)).slice(0, 3);
    const expFiring = firing.filter((a) => a.experience === x.id).length;
    return h('article', { class: 'card', 'data-experience': x.id },
      h('h2', {}, h('a', { href: ctx.link('experience', x.id), 'data-key': 'exp-' + x.id }, x.name)),
      h('div', { class: 'muted' }, 'Experience Manager: ' + x.manager.name + ' (' + x.manager.team + ')'),
      h('dl', {},
        h('dt', {}, 'SCO rate'), h('dd', { class: 'sco-rate' }, pct(e.sco_rate)),
        h('dt', {}, 'Journeys'), h('dd', {}, `${count(e.journeys_started)} started \u00b7 ${count(e.journeys_completed)} completed \u00b7 ${count(e.journeys_abandoned)} abandoned \u00b7 ${count(e.journeys_in_flight)} in flight, ${count(e.journeys_stalled)} stalled after a failure`),
        h('dt', {}, 'MOTs per SCO'), h('dd', {}, `${num(e.mots_per_sco_p50, 0)} median, ${num(e.mots_per_sco_p95, 0)} p95 (optimum: one per MOT)`),
        h('dt', {}, 'SMOTO rate'), h('dd', {}, pct(e.smoto_rate) + ' of ' + count(e.amount)),
        h('dt', {}, 'Firing alerts'), h('dd', {}, expFiring ? h('span', { class: 'badge firing' }, '\u2716 ' + expFiring + ' firing') : 'none'),
      ),
      h('div', { class: 'muted' }, 'Worst MOTs'),
      worst.length ? h('ul', {}, worst.map((m) => h('li', {},
        h('a', { href: ctx.link('mot', m.mot), 'data-key': 'worst-' + m.mot }, ctx.mots.get(m.mot)?.name || m.mot),
        ' ', pct(m.smoto_rate), ' vs ', pct(m.target, 1), ' ', badge(state(m, ctx.alertState.get(m.mot)))))) : h('p', { class: 'muted' }, 'No interactions yet.'),
      e.warming ? h('p', { class: 'warn' }, '\u26A0 Rebuilding from Kafka: numbers are incomplete.') : null,
    );
  });
  fill(main.querySelector('#experiences'), cards);
}
