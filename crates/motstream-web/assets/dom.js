// DOM building without HTML parsing: every string becomes a text node or an attribute value,
// so MOT ids, failure reasons and other data from events can never become markup.

const SAFE_URL = /^https?:\/\//i;

/** h('a', {href: '#/x', class: 'c'}, 'text', child) builds an element. Children may be strings,
 * numbers, nodes, arrays of those, or null (skipped). Attributes named on* are refused. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (/^on/i.test(k)) throw new Error('event handler attributes are not allowed: ' + k);
    if (k === 'href' && !(String(v).startsWith('#') || SAFE_URL.test(String(v)))) continue;
    el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces el's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An external link (runbooks, contacts) opened without giving the page's context away. */
export function extLink(url, text) {
  if (!url || !SAFE_URL.test(url)) return text ? document.createTextNode(text) : null;
  return h('a', { href: url, rel: 'noopener noreferrer', target: '_blank' }, text || url);
}

/** A contact: mailto for an e-mail address, a link for a URL, else plain text. */
export function contact(c) {
  if (!c) return null;
  if (/^[^@\s]+@[^@\s]+$/.test(c)) {
    const a = h('a', {}, c);
    a.href = 'mailto:' + c;
    return a;
  }
  return SAFE_URL.test(c) ? extLink(c, c) : document.createTextNode(c);
}
