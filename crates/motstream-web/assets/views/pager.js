// Paging for the long tables (the MOT table, the journey funnel): the page number lives in the
// route's query under its own key, so each table pages on its own and a deep link keeps it.
import { h, fill } from '../dom.js';
import { count } from '../format.js';

export const PAGE = 50;

function current(ctx, key) {
  return Math.max(1, parseInt(ctx.route.query.get(key) || '1', 10) || 1);
}

/** The Previous / Next buttons for the page number under `key`; ids `${id}prev`, `${id}next`. */
export function buttons(ctx, key, id) {
  const prev = h('button', { type: 'button', id: id + 'prev', 'data-key': id + 'prev' }, '\u2190 Previous');
  const next = h('button', { type: 'button', id: id + 'next', 'data-key': id + 'next' }, 'Next \u2192');
  prev.addEventListener('click', () => ctx.setQuery({ [key]: Math.max(1, current(ctx, key) - 1) }));
  next.addEventListener('click', () => ctx.setQuery({ [key]: current(ctx, key) + 1 }));
  return [prev, next];
}

/** The page of `items` to show: fills the `label` element ("Rows 1–50 of 1,000 · page 1 of
 * 20", or `none` when there are no items), enables the buttons, and returns the page's items
 * with the index of its first item in `items`. */
export function page(main, ctx, key, id, items, { noun, none, label }) {
  const pages = Math.max(1, Math.ceil(items.length / PAGE));
  const p = Math.min(current(ctx, key), pages);
  const first = (p - 1) * PAGE;
  const shown = items.slice(first, first + PAGE);
  fill(main.querySelector(label), items.length
    ? `${noun} ${count(first + 1)}\u2013${count(first + shown.length)} of ${count(items.length)} \u00b7 page ${p} of ${pages}`
    : none);
  main.querySelector('#' + id + 'prev').disabled = p <= 1;
  main.querySelector('#' + id + 'next').disabled = p >= pages;
  return { shown, first };
}
