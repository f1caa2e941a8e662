// Unidentified MOTs: ids seen in events that the catalog does not know ("do you know how many
// Moments of Truth there are?"), each with a catalog snippet to adopt it. The ids come from
// events, so they are shown only as text; the YAML quotes them (a JSON string is a valid YAML
// double-quoted scalar).
import { h, fill } from '../dom.js';
import { count, time, ago } from '../format.js';

export function mount(main) {
  main.append(
    h('h1', { id: 'view-title' }, 'Unidentified MOTs'),
    h('p', { id: 'unid-summary' }),
    h('section', { id: 'unid', 'aria-label': 'Unidentified MOT ids' }),
  );
}

function snippet(u, ctx) {
  const exp = ctx.catalog.experiences[0];
  return [
    '# under experiences[].mots of ' + (exp ? exp.id : 'an experience') + ', in journey order:',
    '- id: ' + JSON.stringify(u.mot),
    '  name: ' + JSON.stringify(u.mot),
    '  type: self-service',
    u.example_channel ? '  channels: [' + JSON.stringify(u.example_channel) + ']' : null,
    '  owner: { name: "...", team: "...", contact: "..." }',
    '  target: 0.98',
  ].filter((l) => l !== null).join('\n');
}

export function update(main, ctx) {
  const list = ctx.status.unidentified || [];
  const overflow = ctx.status.unidentified_overflow || 0;
  const total = list.reduce((a, u) => a + u.count, 0);
  fill(main.querySelector('#unid-summary'),
    `Do you know how many Moments of Truth there are? ${count(list.length)} MOT ids seen in events are not in the catalog (${count(total)} interactions)` +
    (overflow ? `, and ${count(overflow)} more interactions under ids beyond the table's bound.` : '.'));
  const now = ctx.status.now_ms;
  fill(main.querySelector('#unid'), list.length
    ? h('table', { id: 'unid-table' }, h('thead', {}, h('tr', {}, ['MOT id', 'Interactions', 'First seen', 'Last seen', 'Channel', 'Add to the catalog'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, list.map((u) => h('tr', { 'data-mot': u.mot },
        h('td', { class: 'code unid-id' }, u.mot),
        h('td', { class: 'n' }, count(u.count)),
        h('td', {}, time(u.first_seen_ms)),
        h('td', {}, time(u.last_seen_ms), h('div', { class: 'muted' }, ago(u.last_seen_ms, now))),
        h('td', {}, u.example_channel || '\u2014'),
        h('td', {}, h('pre', { class: 'yaml' }, h('code', {}, snippet(u, ctx))))))))
    : h('p', { class: 'muted' }, '\u2714 Every MOT id seen is in the catalog.'));
}
