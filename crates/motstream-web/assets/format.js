// Formatting for people: percentages, humanised durations, counts with separators and
// absolute times in the viewer's own time zone. null/undefined render as an em dash.

const DASH = '\u2014';
const nf = new Intl.NumberFormat(undefined);

export function count(n) {
  return n === null || n === undefined ? DASH : nf.format(n);
}

/** 0.9812 -> "98.12%" */
export function pct(r, digits = 2) {
  if (r === null || r === undefined || Number.isNaN(r)) return DASH;
  return (r * 100).toFixed(digits) + '%';
}

/** A difference of two rates in percentage points, signed: -0.012 -> "-1.20 pp" */
export function pp(d, digits = 2) {
  if (d === null || d === undefined || Number.isNaN(d)) return DASH;
  const s = (d * 100).toFixed(digits);
  return (d > 0 ? '+' : '') + s + ' pp';
}

/** Milliseconds as a short human duration: 850 ms, 4.2 s, 3 min 20 s, 1 h 5 min, 2 d 3 h. */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return DASH;
  if (ms < 1000) return Math.round(ms) + ' ms';
  const s = ms / 1000;
  if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + ' s';
  const parts = [];
  let rest = Math.round(s);
  const units = [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]];
  for (const [u, n] of units) {
    if (rest >= n) {
      parts.push(Math.floor(rest / n) + ' ' + u);
      rest %= n;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

const tf = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  second: '2-digit', timeZoneName: 'short',
});

/** An absolute time (ms since the epoch) in the viewer's time zone. */
export function time(ms) {
  if (!ms) return DASH;
  return tf.format(new Date(ms));
}

/** "3 min ago" style age of a time, against now. */
export function ago(ms, now) {
  if (!ms) return DASH;
  const d = Math.max(0, now - ms);
  return d < 1000 ? 'just now' : duration(d) + ' ago';
}

export function zone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
}

export function num(x, digits = 1) {
  return x === null || x === undefined || Number.isNaN(x) ? DASH : x.toFixed(digits);
}

/**
 * A MOT's state against its target, never shown by colour alone: level (for the colour),
 * icon and label (for everyone).
 *   breaching: an alert fires, or it fails at twice its error budget or more (burn >= 2)
 *   at risk:   below target (burn > 1) or an alert is pending
 *   on target: at or above target
 *   no data:   no interactions in the window
 */
export function state(m, alert) {
  if (alert === 'firing') return { level: 'red', icon: '\u2716', label: 'Breaching (alert firing)' };
  if (!m || !m.amount || m.smoto_rate === null || m.smoto_rate === undefined) {
    return { level: 'none', icon: '\u25CB', label: 'No data' };
  }
  if (m.burn_rate >= 2) return { level: 'red', icon: '\u2716', label: 'Breaching' };
  if (alert === 'pending' || m.smoto_rate < m.target) {
    return { level: 'amber', icon: '\u25B2', label: 'At risk' };
  }
  return { level: 'green', icon: '\u2714', label: 'On target' };
}

/** Trend of the SMOTO rate against the previous window, with an arrow. */
export function trend(d) {
  if (d === null || d === undefined) return DASH;
  const arrow = d > 0.0005 ? '\u2197 ' : d < -0.0005 ? '\u2198 ' : '\u2192 ';
  return arrow + pp(d);
}
