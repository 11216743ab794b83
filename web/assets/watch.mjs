// The watch view: up to four players, the channels, the selected player's
// source ("Now playing"), its channel's switches and ranked streams.

import {
  h, keyed, fill, badge, setText, setAttr, relTime, fmtMs, fmtBitrate, fmtDateTime, fmtPercent, fmtClock, uptimeClass,
  streamTitle,
} from './dom.mjs';
import { getJSON, describeError } from './api.mjs';
import { Poller } from './poll.mjs';
import { Player, preloadPlayer } from './player.mjs';

const MAX_PLAYERS = 4;
const UPTIME_MAX_AGE_MS = 60000; // hourly buckets move slowly
const UPTIME_ROWS = 20;
const FALLBACK_SECONDS = 5;
const SLUG = /^[a-z0-9_-]{1,64}$/;
const ID = /^\d{1,15}$/;

function parseSpec(text) {
  const [kind, value = ''] = String(text).split(':', 2);
  if (kind === 'channel' && SLUG.test(value)) return { kind, slug: value };
  if (kind === 'stream' && ID.test(value)) return { kind, id: Number(value) };
  return null;
}

const specKey = (spec) => (spec.kind === 'channel' ? `channel:${spec.slug}` : `stream:${spec.id}`);

/** The players a URL asks for: `play=` (repeated), else `stream=`, else `channel=`. */
function specsFromUrl(params) {
  const plays = params.getAll('play').map(parseSpec).filter(Boolean).slice(0, MAX_PLAYERS);
  if (plays.length) return plays;
  const channel = params.get('channel');
  const home = channel && SLUG.test(channel) ? channel : null;
  const stream = params.get('stream');
  if (stream && ID.test(stream)) return [{ kind: 'stream', id: Number(stream), home }];
  return home ? [{ kind: 'channel', slug: home }] : [];
}

export function mount(main, url) {
  const view = new WatchView(main, specsFromUrl(url.searchParams));
  return { unmount: () => view.destroy() };
}

class WatchView {
  constructor(main, specs) {
    this.specs = specs;
    // Also, once loaded: channels ([ChannelDto]), list ({slug, streams} of the
    // selected player's channel), extractors, schedule.
    this.streams = new Map(); // id → StreamDto, every one seen
    this.lookups = new Map(); // id → Promise of GET streams/{id}
    this.uptime = new Map(); // id → {at, checkedAt, series, total, failed}
    this.log = { byId: new Map() }; // the switches of the shown channel
    this.players = [];
    this.build(main);
    this.render();
    preloadPlayer();
    this.onKey = (event) => this.key(event);
    document.addEventListener('keydown', this.onKey);
    this.channelsPoller = new Poller(() => this.refreshChannels(), 3000).start();
    this.streamsPoller = new Poller(() => this.refreshStreams(), 15000).start();
    this.schedulePoller = new Poller(() => this.refreshSchedule(), 60000).start();
  }

  destroy() {
    this.destroyed = true;
    [this.channelsPoller, this.streamsPoller, this.schedulePoller].forEach((poller) => poller.stop());
    this.cancelFallback();
    document.removeEventListener('keydown', this.onKey);
    for (const player of this.players) player.destroy();
  }

  build(main) {
    const panel = (id, title, ...content) => h('section', { class: 'panel', 'aria-labelledby': id },
      h('h2', { id }, title), ...content);
    this.fallbackText = h('p', { class: 'banner-text' });
    this.fallbackButton = h('button', { type: 'button', class: 'back-to-channel', onclick: () => this.backToChannel() });
    this.fallbackEl = h('div', { id: 'fallback', class: 'banner', role: 'alert', hidden: true },
      this.fallbackText, this.fallbackButton);
    this.placeholder = h('p', { class: 'player-msg', role: 'status' }, 'Loading channels…');
    // Shaped like a player, so the first one takes its place without a jump.
    this.playersEl = h('div', { id: 'players', class: 'players', 'data-count': 1 }, h('div', { class: 'player-placeholder' },
      h('div', { class: 'player-head' }), h('div', { class: 'stage' }, this.placeholder), h('div', { class: 'player-controls' })));
    this.addButton = h('button', {
      type: 'button', id: 'add-player', disabled: true, onclick: () => this.addPlayer(),
    }, '+ Add player');
    this.connNote = h('p', { class: 'conn-note', role: 'status', hidden: true });
    this.sessionNote = h('p', { class: 'session-note' });

    // Title, site, response time, bitrate, channel, note.
    const facts = ['Site', 'Response', 'Bitrate', 'Channel'].map((name) => [name, h('dd')]);
    this.npFields = [h('p', { class: 'np-title' }), ...facts.map(([, dd]) => dd), h('p', { class: 'np-note' })];
    // The signed playlist URL, to paste into VLC or a TV (plays without a login).
    this.npLink = h('a', { class: 'np-link', hidden: true }, 'Playlist URL for VLC or a TV');
    this.npDetails = h('div', {}, this.npFields[0],
      h('dl', { class: 'facts' }, facts.map(([name, dd]) => h('div', {}, h('dt', {}, name), dd))), this.npFields[5],
      this.npLink);
    this.npEmpty = h('div', { class: 'empty', hidden: true });
    this.npHeading = h('h2', { id: 'np-h' }, 'Now playing');
    this.nowPlaying = h('section', { id: 'now-playing', class: 'panel', 'data-stream-id': '', 'aria-labelledby': 'np-h' },
      this.npHeading, this.npDetails, this.npEmpty);

    this.channelsEl = h('div', { id: 'channels', class: 'channel-list', role: 'group', 'aria-labelledby': 'ch-h' });
    this.switchesEl = h('ol', { id: 'switches', class: 'switch-log', tabindex: 0, 'aria-labelledby': 'sw-h' });
    this.streamsEl = h('ol', { id: 'streams', class: 'stream-list' });
    const switches = panel('sw-h', 'Switches', this.switchesEl);
    const streams = panel('st-h', 'Streams',
      h('p', { class: 'hint' }, 'Ranked best first. Play one to watch it directly, outside the channel.'),
      h('div', { class: 'stream-head', 'aria-hidden': 'true' },
        ['#', 'Stream', 'State', 'Response', 'Bitrate', 'Uptime, 24 h', ''].map((text) => h('span', {}, text))),
      this.streamsEl);
    streams.classList.add('watch-streams');
    [this.switchesHeading, this.streamsHeading] = [switches.firstChild, streams.firstChild];

    main.append(
      h('h1', { class: 'visually-hidden', tabindex: -1 }, 'Watch'),
      h('div', { class: 'watch-layout' },
        h('div', { class: 'watch-main' },
          this.fallbackEl,
          this.playersEl,
          h('div', { class: 'players-bar' }, this.addButton,
            h('p', { class: 'keys' }, 'Keys: ', h('kbd', {}, 'Space'), ' or ', h('kbd', {}, 'K'), ' play/pause, ',
              h('kbd', {}, 'F'), ' full screen, ', h('kbd', {}, 'M'), ' mute')),
          this.connNote,
          this.sessionNote),
        h('aside', { class: 'watch-side', 'aria-label': 'Channel details' },
          this.nowPlaying, panel('ch-h', 'Channels', this.channelsEl), switches),
        streams));
  }

  // --- polling ---------------------------------------------------------------

  async refreshChannels() {
    let body;
    try {
      body = await getJSON('channels');
    } catch (err) {
      if (this.destroyed) return;
      this.channelsError = describeError(err);
      setText(this.connNote, `Could not refresh the channels. ${this.channelsError}`);
      this.connNote.hidden = !this.channels;
      setText(this.placeholder, `Could not load the channels. ${this.channelsError}`);
      this.render();
      return;
    }
    if (this.destroyed) return;
    this.channelsError = null;
    this.connNote.hidden = true;
    this.channels = body.channels;
    this.defaultSlug = [body.default, 'best', ...this.channels.map((c) => c.slug)].find((slug) => this.channel(slug));
    if (!this.players.length) this.createPlayers();
    this.noteSwitch();
    for (const player of this.players) this.loadPlayer(player);
    this.render();
  }

  render() {
    this.renderChannels();
    this.renderNowPlaying();
    this.renderSwitches();
    this.renderStreams();
    for (const player of this.players) if (player.picker) this.fillPicker(player);
  }

  async refreshStreams() {
    const slug = this.homeSlug();
    if (!slug) return; // the channels are not known yet: they poke this poller
    await Promise.all([this.refreshExtractors(), this.refreshList(slug)]);
    if (this.destroyed) return;
    this.render();
    await this.refreshUptime();
  }

  async refreshList(slug) {
    try {
      const body = await getJSON(`channels/${slug}/streams`);
      this.listError = null;
      for (const stream of body.streams) this.streams.set(stream.id, stream);
      this.list = { slug, streams: body.streams };
    } catch (err) {
      this.listError = describeError(err);
    }
  }

  async refreshExtractors() {
    // They only refine the empty states: on failure, keep the last answer.
    ({ extractors: this.extractors, last_run: this.lastRun } = await getJSON('extractors').catch(() => this));
  }

  async refreshUptime() {
    const now = Date.now();
    const due = (this.list ? this.list.streams : []).slice(0, UPTIME_ROWS).filter((stream) => {
      const known = this.uptime.get(stream.id);
      return !known || now - known.at > (known.failed ? 5 : 1) * UPTIME_MAX_AGE_MS
        || (!known.failed && known.checkedAt !== stream.checked_at);
    });
    await Promise.all(due.map((stream) => getJSON(`streams/${stream.id}/uptime?step=1h`).then(
      (body) => this.uptime.set(stream.id, { at: Date.now(), checkedAt: stream.checked_at, ...body }),
      () => this.uptime.set(stream.id, { at: Date.now(), failed: true }),
    )));
    if (due.length && !this.destroyed) this.renderStreams();
  }

  async refreshSchedule() {
    this.schedule = await getJSON('schedule').catch(() => this.schedule);
    if (this.schedule && !this.destroyed) {
      this.renderSessionNote();
      this.renderNowPlaying();
    }
  }

  // --- players ---------------------------------------------------------------

  channel(slug) {
    return (this.channels || []).find((c) => c.slug === slug) || null;
  }

  /** The channel of the selected player: the panels show this one. */
  homeSlug() {
    return (this.selected && this.selected.home) || this.defaultSlug;
  }

  createPlayers() {
    this.playersEl.replaceChildren();
    const specs = this.specs.length ? this.specs : [{ kind: 'channel', slug: this.defaultSlug }];
    for (const spec of specs) this.assign(this.newPlayer(), spec, spec.home);
    this.select(this.players[0]);
    this.layout();
  }

  newPlayer() {
    const number = this.players.length + 1;
    const player = new Player({
      number,
      extra: number > 1,
      hooks: {
        select: (p) => this.select(p),
        close: (p) => this.closePlayer(p),
        unmuted: (p) => this.players.forEach((other) => other !== p && other.setMuted(true)),
        // A channel served its playlist (its source is now chosen), or the video
        // crossed a discontinuity (a switch, maybe): show it now.
        loaded: () => this.channelsPoller.poke(),
        discontinuity: () => this.channelsPoller.poke(),
        failed: (p, why) => this.streamFailed(p, why),
        pick: (p, value) => {
          const spec = parseSpec(value);
          if (spec) this.change(p, spec, spec.slug || p.home);
        },
      },
    });
    this.players.push(player);
    this.playersEl.append(player.el);
    return player;
  }

  /** Points `player` at `spec`; `home` is the channel it belongs to. */
  assign(player, spec, home) {
    const target = spec.kind === 'channel' && !this.channel(spec.slug) ? { kind: 'channel', slug: this.defaultSlug } : spec;
    player.spec = target;
    player.home = target.slug || (this.channel(home) ? home : this.defaultSlug);
    if (this.fallback && this.fallback.player === player) this.cancelFallback();
    this.loadPlayer(player);
  }

  /** A user's choice: play it, keep it in the URL, refresh the panels. */
  change(player, spec, home) {
    this.assign(player, spec, home);
    this.writeUrl();
    if (this.selected === player) this.panelsChanged(null);
    else this.select(player);
  }

  loadPlayer(player) {
    const { spec } = player;
    if (spec.kind === 'channel') {
      const channel = this.channel(spec.slug);
      player.load(spec, channel && channel.url, channel ? channel.title : spec.slug, channel && channel.state);
      return;
    }
    const stream = this.streams.get(spec.id);
    player.load(spec, stream && stream.proxy_url, streamTitle(stream || spec), stream && stream.state);
    if (!stream) {
      this.lookupStream(spec.id).then((found) => {
        if (this.destroyed || player.spec !== spec) return;
        if (found) this.loadPlayer(player);
        else this.streamFailed(player, 'no such stream');
      });
    }
  }

  /** One stream's details, fetched once (deep links, switch titles). */
  lookupStream(id) {
    if (!this.lookups.has(id)) {
      this.lookups.set(id, getJSON(`streams/${id}`).then((stream) => {
        this.streams.set(id, stream);
        return stream;
      }, () => null));
    }
    return this.lookups.get(id);
  }

  select(player) {
    if (!player || this.selected === player) return;
    const previousHome = this.homeSlug();
    this.selected = player;
    for (const p of this.players) p.el.classList.toggle('selected', p === player);
    this.panelsChanged(previousHome);
  }

  panelsChanged(previousHome) {
    const home = this.homeSlug();
    if (home !== previousHome || !this.list || this.list.slug !== home) {
      this.list = null;
      this.listError = null;
      this.streamsPoller.poke();
    }
    this.render();
  }

  addPlayer() {
    if (this.players.length >= MAX_PLAYERS || !this.channels) return;
    const shown = new Set(this.players.map((p) => specKey(p.spec)));
    const candidates = [
      ...this.channels.map((c) => ({ kind: 'channel', slug: c.slug })),
      ...[...this.streams.values()].filter((st) => st.state !== 'down').map((st) => ({ kind: 'stream', id: st.id })),
    ];
    const spec = candidates.find((c) => !shown.has(specKey(c))) || { kind: 'channel', slug: this.defaultSlug };
    const player = this.newPlayer();
    this.layout();
    this.change(player, spec, this.homeSlug());
    player.picker.focus();
  }

  closePlayer(player) {
    const index = this.players.indexOf(player);
    if (index < 1) return;
    if (this.fallback && this.fallback.player === player) this.cancelFallback();
    player.destroy();
    this.players.splice(index, 1);
    this.players.forEach((p, i) => p.setNumber(i + 1));
    if (this.selected === player) {
      this.selected = null;
      this.select(this.players[index - 1]);
    }
    this.layout();
    this.writeUrl();
    this.addButton.focus();
  }

  layout() {
    const count = this.players.length;
    this.playersEl.dataset.count = count;
    this.addButton.disabled = count >= MAX_PLAYERS;
    setText(this.addButton, count >= MAX_PLAYERS ? 'Four players at most' : '+ Add player');
    this.players.forEach((p) => p.el.classList.toggle('multi', count > 1));
  }

  /** An extra player's picker: every channel, then every stream seen. */
  fillPicker(player) {
    const { spec } = player;
    const streams = [...this.streams.values()].filter((st) => st.state !== 'down' || st.id === spec.id);
    if (spec.kind === 'stream' && !this.streams.has(spec.id)) streams.push(spec);
    const options = [
      ...(this.channels || []).map((c) => [`channel:${c.slug}`, `Channel: ${c.title}`]),
      ...streams.map((st) => [`stream:${st.id}`, `Stream: ${streamTitle(st)}${st.site_name ? ` (${st.site_name})` : ''}`]),
    ];
    const signature = JSON.stringify(options);
    if (player.picker.__signature !== signature) {
      player.picker.__signature = signature;
      player.picker.replaceChildren(...options.map(([value, text]) => h('option', { value, text })));
    }
    player.picker.value = specKey(spec);
  }

  writeUrl() {
    const specs = this.players.map((p) => p.spec);
    const params = new URLSearchParams();
    const [first] = specs;
    if (specs.length > 1) specs.forEach((spec) => params.append('play', specKey(spec)));
    else if (first.kind === 'channel') params.set('channel', first.slug);
    else {
      params.set('stream', first.id);
      if (this.players[0].home !== this.defaultSlug) params.set('channel', this.players[0].home);
    }
    history.replaceState(null, '', new URL(`watch?${params.toString().replace(/%3A/g, ':')}`, document.baseURI));
  }

  // --- fallback from a failed stream -----------------------------------------

  streamFailed(player, why) {
    if (this.destroyed || !this.players.includes(player)) return;
    this.cancelFallback();
    const channel = this.channel(player.home);
    const stream = this.streams.get(player.spec.id);
    this.fallback = {
      player, why, seconds: FALLBACK_SECONDS,
      name: stream ? `“${streamTitle(stream)}”` : 'The stream',
      channelName: channel ? channel.title : player.home,
    };
    setText(this.fallbackButton, `Back to channel ${this.fallback.channelName}`);
    this.fallbackEl.hidden = false;
    this.tickFallback();
  }

  tickFallback() {
    const fb = this.fallback;
    if (fb.seconds <= 0) {
      this.backToChannel();
      return;
    }
    const where = this.players.length > 1 ? ` in player ${this.players.indexOf(fb.player) + 1}` : '';
    setText(this.fallbackText, `${fb.name} stopped playing${where} (${fb.why}). `
      + `Back to channel ${fb.channelName} in ${fb.seconds} s.`);
    fb.seconds -= 1;
    fb.timer = setTimeout(() => this.tickFallback(), 1000);
  }

  cancelFallback() {
    if (this.fallback) clearTimeout(this.fallback.timer);
    this.fallback = null;
    this.fallbackEl.hidden = true;
  }

  backToChannel() {
    const fb = this.fallback;
    this.cancelFallback();
    if (fb && !this.destroyed && this.players.includes(fb.player)) {
      this.change(fb.player, { kind: 'channel', slug: fb.player.home }, fb.player.home);
    }
  }

  key(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || !this.selected) return;
    const target = event.target instanceof Element ? event.target : document.body;
    if (target.closest('input, select, textarea, [contenteditable]')) return;
    const key = event.key.toLowerCase();
    if (key === ' ' && target.closest('button, a, summary')) return; // the control's own action
    const action = { ' ': 'togglePlay', k: 'togglePlay', f: 'toggleFullscreen', m: 'toggleMute' }[key];
    if (!action) return;
    event.preventDefault();
    this.selected[action]();
  }

  // --- switch log ------------------------------------------------------------

  /** The shown channel's newest switch: add it (and fetch any missed). */
  noteSwitch() {
    const slug = this.homeSlug();
    const { log } = this;
    if (log.slug !== slug) {
      this.log = { slug, byId: new Map() };
      this.loadSwitches(slug);
      return;
    }
    const channel = this.channel(slug);
    const last = channel && channel.last_switch;
    if (!last || !log.loaded || log.byId.has(last.id)) return;
    const newest = Math.max(0, ...log.byId.keys());
    log.byId.set(last.id, last);
    if (newest && last.id > newest + 1) this.loadSwitches(slug);
  }

  async loadSwitches(slug) {
    const { log } = this;
    try {
      const body = await getJSON(`channels/${slug}/switches?limit=20`);
      for (const sw of body.switches) log.byId.set(sw.id, sw);
      log.loaded = true;
      log.error = null;
    } catch (err) {
      log.error = describeError(err);
    }
    if (!this.destroyed && log === this.log) this.renderSwitches();
  }

  streamName(id) {
    if (id === null || id === undefined) return null;
    const stream = this.streams.get(id);
    if (stream) return streamTitle(stream);
    // Not in the channel's list (once it is loaded): ask for it.
    if (this.list) this.lookupStream(id).then((found) => found && !this.destroyed && this.renderSwitches());
    return `stream ${id}`;
  }

  renderSwitches() {
    if (this.log.slug !== this.homeSlug() && this.channels) this.noteSwitch();
    const { log } = this;
    const channel = this.channel(log.slug);
    setText(this.switchesHeading, channel ? `Switches of ${channel.title}` : 'Switches');
    let empty = 'Loading the switches…';
    if (log.error) empty = `Could not load the switches. ${log.error}`;
    else if (log.loaded) empty = 'No switches yet: the channel has kept its source since it started.';
    keyed(this.switchesEl, [...log.byId.values()].sort((a, b) => b.id - a.id).slice(0, 30), {
      key: (sw) => sw.id,
      create: () => h('li', { class: 'switch' }, h('span'), ' ', h('time')),
      update: (li, sw) => {
        const from = this.streamName(sw.from) || 'no source';
        const to = this.streamName(sw.to) || 'no source (none left)';
        setText(li.firstChild, `Switched from ${from} to ${to}: ${sw.detail || sw.reason.replace(/_/g, ' ')}`);
        setAttr(li.lastChild, 'datetime', sw.at);
        setAttr(li.lastChild, 'title', fmtDateTime(sw.at));
        setText(li.lastChild, relTime(sw.at));
      },
      empty,
    });
  }

  // --- panels ----------------------------------------------------------------

  renderChannels() {
    const { spec } = this.selected || {};
    let empty = this.channels ? 'No channels.' : 'Loading channels…';
    if (this.channelsError) empty = `Could not load the channels. ${this.channelsError}`;
    keyed(this.channelsEl, this.channels || [], {
      key: (c) => c.slug,
      create: (c) => h('button', {
        type: 'button', class: 'channel', 'data-channel': c.slug, onclick: () => this.playChannel(c.slug),
      }, h('span', { class: 'ch-title' }), h('span', { class: 'badge' }), h('span', { class: 'ch-source' })),
      update: (button, c) => {
        const [title, state, source] = button.children;
        const playing = c.source ? c.source.title || `stream ${c.source.id}` : null;
        setText(title, c.title);
        badge(state, c.state);
        setText(source, playing || 'no source yet');
        setAttr(button, 'aria-pressed', String(!!spec && spec.slug === c.slug));
        setAttr(button, 'aria-label', `${c.title}: ${c.state}, ${playing ? `playing ${playing}` : 'no source'}`);
      },
      empty,
    });
  }

  playChannel(slug) {
    if (this.selected) this.change(this.selected, { kind: 'channel', slug }, slug);
  }

  playStream(id) {
    const player = this.selected;
    if (!player) return;
    if (player.spec.id === id) player.restart();
    else this.change(player, { kind: 'stream', id }, player.home);
  }

  /** Why there is nothing to play: sentences and links. */
  nothingToPlay(channel) {
    if (this.extractors && !this.extractors.length) {
      return ['No sources configured: add an ', h('code', {}, '[[extractors]]'),
        ' entry to config.toml and restart the service. ', h('a', { href: 'status' }, 'See Status'), '.'];
    }
    const parts = [`No healthy stream for ${channel ? channel.title : 'this channel'} yet; `,
      `${this.lastRun ? `the last check ran ${relTime(this.lastRun)}, and ` : ''}the next extraction run checks again. `,
      h('a', { href: 'status' }, 'See Status'), '.'];
    const { live_session: live, next_session: next } = this.schedule || {};
    if (this.schedule && !live && next && next.start_utc) {
      parts.push(` No session is live: ${next.race_name}, ${next.name}, starts ${fmtDateTime(next.start_utc)} `
        + `(${relTime(next.start_utc)}). `, h('a', { href: 'calendar' }, 'Schedule'), '.');
    }
    return parts;
  }

  renderNowPlaying() {
    const player = this.selected;
    setText(this.npHeading, this.players.length > 1 && player
      ? `Now playing · player ${this.players.indexOf(player) + 1}` : 'Now playing');
    let id = null;
    let empty = null;
    let facts = null;
    if (!player) {
      empty = [this.channelsError ? `Could not load the channels. ${this.channelsError}` : 'Loading…'];
    } else if (player.spec.kind === 'channel') {
      const channel = this.channel(player.spec.slug);
      const source = channel && channel.source;
      const unconfigured = this.extractors && !this.extractors.length;
      if (source && channel.state !== 'down' && !unconfigured) {
        id = source.id;
        const stream = this.streams.get(id);
        if (!stream && this.list) this.lookupStream(id).then((found) => found && !this.destroyed && this.renderNowPlaying());
        const aside = channel.set_aside.length;
        facts = [source.title || streamTitle(stream || source), stream ? stream.site_name : source.site_key,
          stream && stream.response_time_ms, source.variant_bandwidth || (stream && stream.bitrate),
          `${channel.title} (${channel.state})`,
          `${channel.switches} switch${channel.switches === 1 ? '' : 'es'} so far.`
          + `${aside ? ` ${aside} source${aside === 1 ? '' : 's'} set aside.` : ''}`];
      } else if (channel && channel.state === 'idle' && !source && !unconfigured) {
        empty = [`Starting ${channel.title}: the channel picks its best healthy source when it is first played…`];
      } else {
        empty = this.nothingToPlay(channel);
      }
    } else {
      id = player.spec.id;
      const stream = this.streams.get(id);
      const home = this.channel(player.home);
      facts = [streamTitle(stream || player.spec), stream ? stream.site_name : '–', stream && stream.response_time_ms,
        stream && stream.bitrate, 'none: this stream plays directly',
        stream ? `State: ${stream.state}.${home ? ` If it fails, ${home.title} takes over.` : ''}` : 'Looking it up…'];
    }
    const link = player && (player.spec.kind === 'channel'
      ? (this.channel(player.spec.slug) || {}).url
      : (this.streams.get(player.spec.id) || {}).proxy_url);
    setAttr(this.npLink, 'href', link || null);
    this.npLink.hidden = !link;
    if (facts) {
      facts[2] = fmtMs(facts[2]);
      facts[3] = fmtBitrate(facts[3]);
      facts.forEach((text, i) => setText(this.npFields[i], text));
    }
    setAttr(this.nowPlaying, 'data-stream-id', id === null ? '' : id);
    this.npDetails.hidden = !facts;
    this.npEmpty.hidden = !empty;
    if (empty) fill(this.npEmpty, h('p', {}, empty));
  }

  renderSessionNote() {
    const { races, live_session: live, next_session: next } = this.schedule;
    let parts = ['No upcoming session in the calendar. '];
    if (live) parts = [h('span', { class: 'live-dot', 'aria-hidden': 'true' }), `Live now: ${live.race_name}, ${live.name}. `];
    else if (next && next.start_utc) {
      parts = [`No session is live. Next: ${next.race_name}, ${next.name}, ${fmtDateTime(next.start_utc)} `
        + `(${relTime(next.start_utc)}). `];
    } else if (!races.length) parts = ['The F1 calendar has not been fetched yet. '];
    fill(this.sessionNote, parts, h('a', { href: 'calendar' }, 'Schedule'));
  }

  renderStreams() {
    const channel = this.channel(this.homeSlug());
    setText(this.streamsHeading, channel ? `Streams of ${channel.title}` : 'Streams');
    const list = this.list && this.list.slug === this.homeSlug() ? this.list.streams : null;
    const { spec } = this.selected || {};
    const context = {
      playing: spec && spec.kind === 'stream' ? spec.id : null,
      source: channel && channel.source ? channel.source.id : null,
      aside: new Map(((channel && channel.set_aside) || []).map((a) => [a.id, a.reason])),
    };
    let empty = list ? this.nothingToPlay(channel) : ['Loading streams…'];
    const error = this.listError || (!this.channels && this.channelsError);
    if (error && !list) empty = [`Could not load the streams. ${error}`];
    keyed(this.streamsEl, list || [], {
      key: (st) => st.id,
      create: (st) => this.streamRow(st),
      update: (row, st, index) => this.updateStreamRow(row, st, index, context),
      empty,
    });
  }

  streamRow(stream) {
    const span = (cls, ...children) => h('span', { class: cls }, ...children);
    return h('li', { class: 'stream-row', 'data-stream-id': stream.id },
      span('rank'),
      span('stream-main', span('stream-title'), span('stream-sub')),
      span('stream-state', span('badge'), span('stream-flag')),
      span('stream-latency'),
      span('stream-bitrate'),
      h('span', { class: 'uptime-bar', role: 'img' }, Array.from({ length: 24 }, () => span('cell u-none'))),
      h('button', { type: 'button', class: 'play', onclick: () => this.playStream(stream.id) }, 'Play'));
  }

  updateStreamRow(row, stream, index, { playing, source, aside }) {
    const [rank, main, state, latency, bitrate, bar, play] = row.children;
    setAttr(row, 'data-state', stream.state);
    row.classList.toggle('playing', playing === stream.id);
    setText(rank, index + 1);
    setText(main.firstChild, streamTitle(stream));
    const type = stream.stream_type !== 'unknown' && stream.stream_type;
    setText(main.lastChild, [stream.site_name, stream.quality, type].filter(Boolean).join(' · '));
    badge(state.firstChild, stream.state);
    let flag = stream.error || '';
    if (playing === stream.id) flag = 'playing here';
    else if (source === stream.id) flag = 'channel source';
    else if (aside.has(stream.id)) flag = `set aside: ${aside.get(stream.id)}`;
    setText(state.lastChild, flag);
    setAttr(state.lastChild, 'title', flag || null);
    setText(latency, fmtMs(stream.response_time_ms));
    setText(bitrate, fmtBitrate(stream.bitrate));
    this.updateBar(bar, this.uptime.get(stream.id));
    const action = playing === stream.id ? 'Restart' : 'Play';
    setText(play, action);
    setAttr(play, 'aria-label', `${action} ${streamTitle(stream)}`);
  }

  updateBar(bar, uptime) {
    const series = (uptime && uptime.series ? uptime.series : []).slice(-24);
    const offset = 24 - series.length;
    [...bar.children].forEach((cell, i) => {
      const point = series[i - offset];
      cell.className = `cell u-${uptimeClass(point)}`;
      setAttr(cell, 'title', point ? `${fmtClock(Date.parse(point.ts))}: `
        + `${point.checks ? `${fmtPercent(point.uptime)} of ${point.checks} checks` : 'no checks'}` : null);
    });
    const total = uptime && uptime.total;
    let label = 'loading';
    if (uptime && uptime.failed) label = 'unavailable';
    else if (total) label = total.checks ? `${fmtPercent(total.uptime)} of ${total.checks} checks` : 'no checks';
    setAttr(bar, 'aria-label', `Uptime over 24 hours: ${label}`);
    setAttr(bar, 'title', `Uptime over 24 hours: ${label}`);
  }
}
