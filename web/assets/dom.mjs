// DOM and formatting helpers. Data from the API (titles, errors) is only
// ever set as text: nothing here parses HTML.

function add(el, children) {
  for (const child of children.flat(2)) {
    if (child !== null && child !== undefined && child !== false) el.append(child);
  }
  return el;
}

/** `h('p', {class: 'x', onclick: fn}, 'text', child)`: an HTML element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') el.textContent = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'hidden' || key === 'disabled' || key === 'value') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  return add(el, children);
}

/** An SVG element (icons, charts). */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') el.textContent = value;
    else if (value !== undefined && value !== null) el.setAttribute(key, value);
  }
  return add(el, children);
}

/** Sets text only when it changed. */
export function setText(el, text) {
  const value = text === null || text === undefined ? '' : String(text);
  if (el.textContent !== value) el.textContent = value;
}

/** Sets (or, for null/false, removes) an attribute only when it changed. */
export function setAttr(el, name, value) {
  if (value === null || value === undefined || value === false) el.removeAttribute(name);
  else if (el.getAttribute(name) !== String(value)) el.setAttribute(name, value);
}

/** A state badge: its text and `data-state` (which colours it). */
export function badge(el, state, text = state) {
  setText(el, text);
  setAttr(el, 'data-state', state);
}

/** Replaces `el`'s content by `parts` (strings, nodes) unless their text is the same. */
export function fill(el, ...parts) {
  const text = parts.flat(2).map((p) => (p instanceof Node ? p.textContent : p ?? '')).join('');
  if (el.__text === text) return;
  el.__text = text;
  el.replaceChildren();
  add(el, parts);
}

/**
 * Updates `container`'s children in place, keyed by `key(item)`: a row is
 * created once, updated on every call, moved only when out of order and
 * removed when gone, so refreshing a list never rebuilds it. Without items,
 * an element with class `empty` says why (`empty`: its text and links).
 */
export function keyed(container, items, { key, create, update, empty }) {
  const rows = container.__rows || (container.__rows = new Map());
  const wanted = new Set();
  let previous = null;
  items.forEach((item, index) => {
    const id = String(key(item));
    wanted.add(id);
    let row = rows.get(id);
    if (!row) rows.set(id, (row = create(item)));
    update(row, item, index);
    const expected = previous ? previous.nextSibling : container.firstChild;
    if (expected !== row) container.insertBefore(row, expected);
    previous = row;
  });
  for (const [id, row] of rows) {
    if (!wanted.has(id)) {
      row.remove();
      rows.delete(id);
    }
  }
  let note = container.__empty;
  if (items.length || !empty) {
    if (note) note.remove();
    return;
  }
  if (!note) {
    const tag = container.tagName;
    note = container.__empty = tag === 'TBODY' ? h('tr', { class: 'empty' }, h('td', { colspan: 9 }))
      : h(tag === 'OL' || tag === 'UL' ? 'li' : 'p', { class: 'empty' });
  }
  fill(note.tagName === 'TR' ? note.firstChild : note, empty);
  if (note.parentNode !== container) container.append(note);
}

// --- formatting --------------------------------------------------------------

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const UNITS = [[60, 'second', 1], [3600, 'minute', 60], [86400, 'hour', 3600], [Infinity, 'day', 86400]];

/** "12 seconds ago", "in 3 hours". */
export function relTime(iso, now = Date.now()) {
  const diff = (Date.parse(iso) - now) / 1000;
  if (Number.isNaN(diff)) return '';
  if (Math.abs(diff) < 5) return 'just now';
  const [, unit, size] = UNITS.find(([limit]) => Math.abs(diff) < limit);
  return relative.format(Math.round(diff / size), unit);
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
});
const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

/** "Sat, Apr 5, 02:00 PM" in the viewer's time zone. */
export const fmtDateTime = (iso) => (Number.isNaN(Date.parse(iso)) ? '' : dateTime.format(Date.parse(iso)));

/** "02:00 PM" in the viewer's time zone. */
export const fmtClock = (t) => clock.format(t);

/** "182 ms", "1.4 s", or an en dash. */
export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (ms >= 10000) return `${Math.round(ms / 1000)} s`;
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** "5.0 Mb/s", "640 kb/s", or an en dash. */
export function fmtBitrate(bps) {
  if (!bps) return '–';
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`;
}

/** "98.5 %" or an en dash. */
export function fmtPercent(ratio) {
  if (ratio === null || ratio === undefined) return '–';
  const pct = ratio * 100;
  return `${pct >= 99.95 || pct === 0 ? pct.toFixed(0) : pct.toFixed(1)} %`;
}

/** "2 d 03:14:05", or "03:14:05" under a day. */
export function fmtCountdown(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const pad = (n) => String(n).padStart(2, '0');
  const rest = total % 86400;
  const time = `${pad(Math.floor(rest / 3600))}:${pad(Math.floor((rest % 3600) / 60))}:${pad(rest % 60)}`;
  return total >= 86400 ? `${Math.floor(total / 86400)} d ${time}` : time;
}

/** "850 ms", "4.2 s", "1 min 5 s". */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (ms < 60000) return fmtMs(ms);
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

/** The viewer's time zone, e.g. "Europe/Paris (CET)". */
export function timeZoneLabel() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
  const short = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' })
    .formatToParts(new Date()).find((p) => p.type === 'timeZoneName');
  return short && short.value !== zone ? `${zone} (${short.value})` : zone;
}

/** Class of an uptime bucket: good, warn, bad, or none (no checks). */
export function uptimeClass(point) {
  if (!point || !point.checks || point.uptime === null) return 'none';
  return point.uptime >= 0.95 ? 'good' : point.uptime >= 0.5 ? 'warn' : 'bad';
}

/** A stream's display title. */
export const streamTitle = (stream) => (stream && stream.title) || `Stream ${stream ? stream.id : ''}`;
