// The journey funnel of one experience: per MOT in journey order, how many journeys reached it
// and how many abandoned journeys stopped there. Paged like the MOT table, so an experience of
// a thousand MOTs keeps one page of rows in the DOM.
import { h, fill } from '../dom.js';
import { count, pct } from '../format.js';
import * as pager from './pager.js';

export function mount(ctx) {
  const [prev, next] = pager.buttons(ctx, 'fpage', 'funnel-');
  return h('section', { id: 'funnel', 'aria-label': 'Journey funnel' },
    h('h2', {}, 'Journey funnel'),
    h('p', { class: 'muted', id: 'funnel-summary', 'aria-live': 'polite' }),
    h('div', { class: 'toolbar' }, h('span', { id: 'funnel-rows', class: 'muted' }), prev, next),
    h('table', { id: 'funnel-table' },
      h('caption', { class: 'muted' }, 'Reached: journeys whose first interaction with the MOT is in the window (once per journey); journeys begun before the window count too, so a step can exceed the journeys started. Abandoned here: journeys that went idle past the timeout with this MOT as their last interaction.'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Step'), h('th', { scope: 'col' }, 'MOT'),
        h('th', { scope: 'col', class: 'n' }, 'Reached'), h('th', { scope: 'col', class: 'n' }, 'Of started'),
        h('th', { scope: 'col', class: 'n' }, 'Abandoned here'), h('th', { scope: 'col', class: 'n' }, 'Of abandoned'))),
      h('tbody', {})));
}

export function update(main, ctx, e) {
  const steps = e.funnel || [];
  const started = e.journeys_started || 0;
  const abandoned = e.journeys_abandoned || 0;
  let worst = null;
  for (const s of steps) if (s.journeys_abandoned_here > 0 && (!worst || s.journeys_abandoned_here > worst.journeys_abandoned_here)) worst = s;
  const name = (id) => (ctx.mots.get(id) || { name: id }).name;
  fill(main.querySelector('#funnel-summary'), worst
    ? 'Most abandoned journeys stopped at ' + name(worst.mot) + ': ' + count(worst.journeys_abandoned_here) + ' of ' + count(abandoned) + ' (' + pct(worst.journeys_abandoned_here / abandoned, 1) + ').'
    : 'No journey was abandoned in the window.');
  const { shown, first } = pager.page(main, ctx, 'fpage', 'funnel-', steps, { noun: 'Steps', none: 'No steps.', label: '#funnel-rows' });
  fill(main.querySelector('#funnel-table tbody'), shown.map((s, i) => {
    const reached = s.journeys_reached;
    const share = reached === null || reached === undefined || !started ? null : reached / started;
    return h('tr', { 'data-mot': s.mot },
      h('td', { class: 'n' }, String(first + i + 1)),
      h('td', {}, h('a', { href: ctx.link('mot', s.mot) }, name(s.mot)), h('div', { class: 'muted code' }, s.mot)),
      h('td', { class: 'n', 'data-field': 'journeys_reached' }, reached === null || reached === undefined ? 'not tracked' : count(reached)),
      h('td', { class: 'n' }, share === null ? '\u2014' : [pct(share, 1), ' ', h('meter', { min: 0, max: 1, value: Math.min(1, share), 'aria-hidden': 'true' })]),
      h('td', { class: 'n', 'data-field': 'journeys_abandoned_here' }, count(s.journeys_abandoned_here)),
      h('td', { class: 'n' }, abandoned ? pct(s.journeys_abandoned_here / abandoned, 1) : '\u2014'));
  }));
}
