// The status view: extractors, recent runs, the streams' recent state
// changes, and one stream's history (response time and up/down over 24 h
// and 7 days) as inline SVG with a text summary.

import { h, keyed, fill, badge, setText, setAttr, relTime, fmtDateTime, fmtDuration, fmtMs, fmtPercent, streamTitle } from './dom.mjs';
import { getJSON, describeError } from './api.mjs';
import { Poller } from './poll.mjs';
import { latencyChart, uptimeChart } from './chart.mjs';

const REFRESH_MS = 10000;
const EVENT_STREAMS = 8;
const HOUR = 3600000;
const RANGES = [['24h', 'Last 24 hours', false], ['7d', 'Last 7 days', true]];

export function mount(main, url) {
  const view = new StatusView(main, url.searchParams.get('stream'));
  return { unmount: () => view.destroy() };
}

/** A table whose cells name their column (shown on phones, where rows stack). */
function table(id, heads, cls = 'data') {
  const body = h('tbody', { id });
  body.row = (attrs, count) => h('tr', attrs, heads.slice(0, count).map((head) => h('td', { 'data-label': head })));
  return [body, h('div', { class: 'table-wrap' },
    h('table', { class: cls }, h('thead', {}, h('tr', {}, heads.map((head) => h('th', { scope: 'col' }, head)))), body))];
}

const time = (iso) => h('time', { datetime: iso, title: fmtDateTime(iso) }, relTime(iso));

class StatusView {
  constructor(main, wanted) {
    this.streamId = /^\d{1,15}$/.test(wanted || '') ? Number(wanted) : null;
    this.history = new Map(); // range → {series, total} | {error}
    const [extractors, extractorsWrap] = table('extractors', ['Extractor', 'State', 'Last run', 'Duration', 'Streams', 'Last error']);
    const [runs, runsWrap] = table('runs', ['Started', 'Trigger', 'Duration', 'Found', 'Healthy', 'Errors'], 'data compact');
    Object.assign(this, { extractorsEl: extractors, runsEl: runs });
    this.eventsEl = h('ol', { id: 'events', class: 'events' });
    this.picker = h('select', { id: 'history-stream', onchange: () => this.pick() });
    this.summary = h('p', { class: 'chart-summary' });
    this.charts = h('div', { class: 'charts' });
    this.updated = h('p', { class: 'hint' });
    const panel = (id, title, content, attrs = {}) => h('section', { class: 'panel', 'aria-labelledby': id, ...attrs },
      h('h2', { id }, title), content);
    main.append(
      h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, 'Status'), this.updated),
      h('div', { class: 'status-grid' },
        panel('ex-h', 'Extractors', extractorsWrap, { class: 'panel wide' }),
        panel('runs-h', 'Recent runs', runsWrap),
        panel('ev-h', 'Recent state changes', this.eventsEl),
        panel('hist-h', 'Stream history', [
          h('p', { class: 'field' }, h('label', { for: 'history-stream' }, 'Stream'), this.picker), this.summary, this.charts,
        ], { id: 'history' })));
    this.poller = new Poller(() => this.refresh(), REFRESH_MS).start();
    this.resize = new ResizeObserver(() => this.chartWidth() !== this.width && this.renderHistory());
    this.resize.observe(this.charts);
  }

  destroy() {
    this.destroyed = true;
    this.poller.stop();
    this.resize.disconnect();
  }

  pick() {
    this.streamId = Number(this.picker.value) || null;
    history.replaceState(null, '', new URL(this.streamId ? `status?stream=${this.streamId}` : 'status', document.baseURI));
    this.history.clear();
    this.renderHistory();
    this.refreshHistory().then(() => this.renderHistory());
  }

  async refresh() {
    const results = await Promise.allSettled(['extractors', 'runs?limit=10', 'streams/all'].map((path) => getJSON(path)));
    if (this.destroyed) return;
    const [extractors, runs, streams] = results.map((r) => (r.status === 'fulfilled' ? r.value : null));
    const errors = results.map((r) => r.reason && describeError(r.reason));
    [this.extractorsError, this.runsError, this.streamsError] = errors;
    if (extractors) this.extractors = extractors.extractors;
    if (runs) this.runs = runs.runs;
    if (streams) this.streams = streams.streams;
    if (this.streams && this.streamId === null && this.streams.length) this.streamId = this.streams[0].id;
    await Promise.all([this.refreshEvents(), this.refreshHistory()]);
    if (this.destroyed) return;
    this.renderExtractors();
    this.renderRuns();
    this.renderEvents();
    this.renderPicker();
    this.renderHistory();
    setText(this.updated, errors.some(Boolean) ? 'Some data could not be loaded; retrying every 10 s.'
      : 'Updated every 10 s while this tab is visible.');
  }

  async refreshEvents() {
    if (!this.streams) return;
    const lists = await Promise.allSettled(this.streams.slice(0, EVENT_STREAMS).map((stream) =>
      getJSON(`streams/${stream.id}/events?limit=5`).then((body) => body.events.map((event) => ({ ...event, stream })))));
    this.eventsError = lists.some((r) => r.status === 'rejected') ? 'Some streams\' changes could not be loaded.' : null;
    this.events = lists.flatMap((r) => r.value || [])
      .sort((a, b) => Date.parse(b.at) - Date.parse(a.at) || b.id - a.id).slice(0, 15);
  }

  async refreshHistory() {
    const id = this.streamId;
    if (id === null) return;
    const weekAgo = Math.floor((Date.now() - 7 * 24 * HOUR) / 1000);
    const answers = await Promise.allSettled([`streams/${id}/uptime?step=1h`, `streams/${id}/uptime?step=1h&from=${weekAgo}`]
      .map((path) => getJSON(path)));
    if (this.destroyed || id !== this.streamId) return;
    answers.forEach((r, i) => this.history.set(RANGES[i][0], r.value || { error: describeError(r.reason) }));
  }

  renderExtractors() {
    const runs = this.runs || [];
    keyed(this.extractorsEl, this.extractors || [], {
      key: (e) => e.site_key,
      create: (e) => this.extractorsEl.row({ 'data-site-key': e.site_key }, 6),
      update: (row, e) => {
        const [name, state, last, duration, streams, error] = row.children;
        const up = e.enabled && !e.last_error;
        setAttr(row, 'data-up', String(up));
        fill(name, h('span', {}, h('b', {}, e.site_name), h('span', { class: 'sub' }, `${e.site_key} · ${e.kind}`)));
        const label = e.enabled ? (up ? 'up' : 'down') : 'disabled';
        fill(state, h('span', { class: 'badge', 'data-state': up ? 'healthy' : e.enabled ? 'down' : 'idle' }, label));
        const run = runs.find((r) => r.extractors.some((x) => x.site_key === e.site_key));
        fill(last, run ? time(run.started_at) : 'not in the last 10 runs');
        setText(duration, fmtDuration(e.last_duration_ms));
        setText(streams, `${e.live_streams} healthy of ${e.cached_streams}`);
        setText(error, e.last_error || '–');
      },
      empty: this.extractorsError && !this.extractors ? `Could not load the extractors. ${this.extractorsError}`
        : ['No sources configured: add an ', h('code', {}, '[[extractors]]'), ' entry to config.toml and restart the service.'],
    });
  }

  renderRuns() {
    keyed(this.runsEl, this.runs || [], {
      key: (run) => run.id,
      create: () => this.runsEl.row({}, 6),
      update: (row, run) => {
        const [started, trigger, duration, found, healthy, errors] = row.children;
        fill(started, `${fmtDateTime(run.started_at)} (`, time(run.started_at), ')');
        setText(trigger, run.trigger);
        setText(duration, fmtDuration(Date.parse(run.finished_at) - Date.parse(run.started_at)));
        setText(found, run.stream_count);
        setText(healthy, run.live_count);
        const failed = run.extractors.filter((e) => e.error).map((e) => `${e.site_key}: ${e.error}`);
        setText(errors, failed.join('; ') || 'none');
      },
      empty: this.runsError && !this.runs ? `Could not load the runs. ${this.runsError}`
        : 'No extraction run yet: the first one starts with the service.',
    });
  }

  renderEvents() {
    let empty = this.eventsError || 'No state changes recorded for these streams.';
    if (this.streams && !this.streams.length) empty = 'No streams yet, so no state changes.';
    else if (!this.streams) empty = this.streamsError ? `Could not load the streams. ${this.streamsError}` : 'Loading…';
    keyed(this.eventsEl, this.events || [], {
      key: (event) => `${event.stream.id}-${event.id}`,
      create: () => h('li', { class: 'event' }, h('span'), h('span', { class: 'badge' }), h('span'), h('span', { class: 'sub' })),
      update: (li, event) => {
        const [at, kind, stream, error] = li.children;
        fill(at, time(event.at));
        badge(kind, event.is_live ? 'healthy' : 'down', event.kind.replace('_', ' '));
        setText(stream, `${streamTitle(event.stream)} (${event.stream.site_name})`);
        setText(error, event.error ? `${event.error_kind ? `${event.error_kind}: ` : ''}${event.error}` : '');
      },
      empty,
    });
  }

  renderPicker() {
    const streams = this.streams || [];
    const options = streams.map((st) => [st.id, `${streamTitle(st)} (${st.site_name}, ${st.state})`]);
    if (this.streamId !== null && !streams.some((st) => st.id === this.streamId)) {
      options.unshift([this.streamId, `Stream ${this.streamId} (not active)`]);
    }
    if (!options.length) options.push(['', this.streams ? 'No streams yet' : 'Unavailable']);
    const signature = JSON.stringify(options);
    if (this.picker.__signature !== signature) {
      this.picker.__signature = signature;
      this.picker.replaceChildren(...options.map(([value, text]) => h('option', { value }, text)));
    }
    this.picker.disabled = !streams.length;
    this.picker.value = this.streamId ?? '';
  }

  chartWidth() {
    const width = this.charts.clientWidth || 600;
    return Math.max(260, width >= 760 ? Math.floor((width - 24) / 2) : width);
  }

  renderHistory() {
    if (this.destroyed) return;
    this.width = this.chartWidth();
    const none = this.streamId === null;
    this.charts.classList.toggle('is-empty', none);
    this.summary.hidden = none;
    if (none) {
      let text = this.streams ? 'No streams yet: history appears once an extraction run finds one.' : 'Loading streams…';
      if (!this.streams && this.streamsError) text = `Could not load the streams. ${this.streamsError}`;
      fill(this.charts, h('p', { class: 'empty' }, text));
      return;
    }
    const stream = (this.streams || []).find((st) => st.id === this.streamId);
    const name = stream ? streamTitle(stream) : `Stream ${this.streamId}`;
    const figures = [];
    const sentences = [];
    for (const [range, label, daily] of RANGES) {
      const data = this.history.get(range);
      if (!data || data.error) {
        if (data) sentences.push(`${label}: could not be loaded. ${data.error}`);
        continue;
      }
      const { total } = data;
      sentences.push(total.checks ? `${label}: ${fmtPercent(total.uptime)} up (${total.healthy} of ${total.checks} checks `
        + `healthy), mean response ${fmtMs(total.mean_ms)}.` : `${label}: no checks.`);
      const lower = label.toLowerCase();
      const common = { series: data.series, width: this.width, stepMs: HOUR, daily, total };
      figures.push(h('figure', { class: 'chart-figure' },
        h('figcaption', {}, `Response time, ${lower}`),
        latencyChart({ ...common, title: `Response time of ${name}, ${lower}` }),
        h('figcaption', {}, `Up and down, ${lower}`),
        uptimeChart({ ...common, title: `Uptime of ${name}, ${lower}` })));
    }
    setText(this.summary, sentences.length ? `${name}. ${sentences.join(' ')}` : `Loading the history of ${name}…`);
    this.charts.__text = null;
    this.charts.replaceChildren(...figures);
  }
}
