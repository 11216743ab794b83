// Inline SVG charts built with DOM APIs: a response-time line and up/down
// bars over hourly buckets, labelled on the viewer's local time.

import { s, fmtMs, fmtPercent, fmtClock, uptimeClass } from './dom.mjs';

const HEIGHT = 150;
const TOP = 14;
const BOTTOM = HEIGHT - 24;
const LEFT = 48;
const dayLabel = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric' });
let ids = 0;

/** An axis maximum whose half is round too: 1, 2, 4, 6, 8 × 10^n. */
function niceMax(value) {
  if (!(value > 0)) return 100;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 4, 6, 8, 10].find((step) => value <= step * power) * power;
}

/** Local midnights (a week) or local hours divisible by 6 (a day) from `start` to `end`. */
function ticks(start, end, daily) {
  const d = new Date(start);
  d.setHours(daily ? 0 : d.getHours(), 0, 0, 0);
  const out = [];
  for (; d < end; daily ? d.setDate(d.getDate() + 1) : d.setHours(d.getHours() + 1)) {
    if (d >= start && (daily || d.getHours() % 6 === 0)) out.push(d.getTime());
  }
  return out;
}

/** The svg with its title and description, axes and grid; `y` ticks as [fraction, label]. */
function frame({ series, width, stepMs, daily, title, description, yTicks }) {
  const id = `chart-${++ids}`;
  const svg = s('svg', {
    class: 'chart', width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img',
    'aria-labelledby': `${id}-t ${id}-d`,
  }, s('title', { id: `${id}-t`, text: title }), s('desc', { id: `${id}-d`, text: description }));
  const right = width - 10;
  const start = series.length ? Date.parse(series[0].ts) : Date.now();
  const end = start + Math.max(1, series.length) * stepMs;
  const x = (t) => LEFT + ((t - start) / (end - start)) * (right - LEFT);
  const y = (fraction) => BOTTOM - fraction * (BOTTOM - TOP);
  for (const [fraction, label] of yTicks) {
    svg.append(s('line', { class: 'grid', x1: LEFT, x2: right, y1: y(fraction), y2: y(fraction) }),
      s('text', { x: LEFT - 6, y: y(fraction) + 4, 'text-anchor': 'end', text: label }));
  }
  svg.append(s('line', { x1: LEFT, x2: right, y1: BOTTOM, y2: BOTTOM }));
  let lastX = -Infinity;
  for (const t of ticks(start, end, daily)) {
    if (x(t) - lastX < (daily ? 58 : 50) || x(t) > right - 16) continue;
    lastX = x(t);
    svg.append(s('line', { x1: lastX, x2: lastX, y1: BOTTOM, y2: BOTTOM + 4 }),
      s('text', { x: lastX, y: HEIGHT - 6, 'text-anchor': 'middle', text: daily ? dayLabel.format(t) : fmtClock(t) }));
  }
  return { svg, x, y };
}

/** Mean response time per bucket as a line, broken where there were no checks. */
export function latencyChart(options) {
  const { series, stepMs } = options;
  const values = series.map((p) => p.mean_ms).filter((v) => v !== null);
  // At least 10 ms, so the axis labels (0, half, top) stay distinct on a fast LAN.
  const top = niceMax(Math.max(10, ...values));
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const { svg, x, y } = frame({
    ...options,
    description: values.length ? `Mean response per hour: average ${fmtMs(mean)}, highest ${fmtMs(Math.max(...values))}, `
      + `lowest ${fmtMs(Math.min(...values))}.` : 'No checks in this range.',
    yTicks: [0, 0.5, 1].map((f) => [f, fmtMs(top * f)]),
  });
  let d = '';
  series.forEach((point, i) => {
    if (point.mean_ms === null) return;
    const [px, py] = [x(Date.parse(point.ts) + stepMs / 2).toFixed(1), y(point.mean_ms / top).toFixed(1)];
    const joined = i > 0 && series[i - 1].mean_ms !== null;
    d += `${joined ? 'L' : 'M'}${px} ${py}`;
    if (!joined && (i === series.length - 1 || series[i + 1].mean_ms === null)) {
      svg.append(s('circle', { cx: px, cy: py, r: 2.5 })); // a lone point
    }
  });
  if (d) svg.append(s('path', { class: 'line', d }));
  return svg;
}

/** Uptime per bucket: the healthy share up from the axis, the failed share down from the top, grey without checks. */
export function uptimeChart(options) {
  const { series, stepMs, total } = options;
  const { svg, x, y } = frame({
    ...options,
    description: total.checks ? `${fmtPercent(total.uptime)} up: ${total.healthy} of ${total.checks} checks healthy.`
      : 'No checks in this range.',
    yTicks: [[0, '0 %'], [1, '100 %']],
  });
  const width = Math.max(1, x(firstTs(series) + stepMs) - LEFT - 1);
  for (const point of series) {
    const left = x(Date.parse(point.ts)) + 0.5;
    const bar = (cls, from, to) => s('rect', { class: cls, x: left, y: y(to), width, height: y(from) - y(to) });
    if (uptimeClass(point) === 'none') svg.append(bar('u-none', 0, 0.03));
    else {
      if (point.uptime > 0) svg.append(bar('u-good', 0, point.uptime));
      if (point.uptime < 1) svg.append(bar('u-bad', point.uptime, 1));
    }
  }
  return svg;
}

const firstTs = (series) => (series.length ? Date.parse(series[0].ts) : 0);
