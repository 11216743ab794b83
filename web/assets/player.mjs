// One player tile: a <video> played by hls.js (transmuxing in a worker), or
// natively where the browser plays HLS itself (Safari, iOS).

import { h, s, badge, setText, setAttr, fmtBitrate } from './dom.mjs';

const WORKER = new URL('./vendor/hls.js-1.7.4/hls.worker.js', import.meta.url).href;
/** A channel without a source answers 503 with Retry-After: 10. */
const RETRY_DOWN_MS = 10000;
const RETRY_MS = 4000;

let hlsPromise = null;

/** Starts loading hls.js (once; the schedule and status never load it). */
export function preloadPlayer() {
  if (!hlsPromise) {
    hlsPromise = import('./vendor/hls.js-1.7.4/hls.min.mjs').then((m) => m.default, () => {
      hlsPromise = null;
      return null;
    });
  }
  return hlsPromise;
}

/** A speaker, crossed out when muted (decorative: the button has text). */
const speaker = (muted) => s('svg', { class: 'icon', viewBox: '0 0 24 24', width: 20, height: 20, 'aria-hidden': 'true' },
  s('path', { d: 'M4 9h4l5-4v14l-5-4H4z', fill: 'currentColor' }),
  s('path', {
    d: muted ? 'M16 9l6 6M22 9l-6 6' : 'M16 8.5a5 5 0 0 1 0 7M18.5 6a8.5 8.5 0 0 1 0 12',
    stroke: 'currentColor', 'stroke-width': 2, fill: 'none',
  }));

function play(video) {
  const promise = video.play();
  if (promise) promise.catch(() => {}); // autoplay refused: the Play button stays
}

export class Player {
  /** `hooks`: select, close, unmuted, loaded, discontinuity, failed(player, why), pick(player, value). */
  constructor({ number, extra, hooks }) {
    this.hooks = hooks;
    this.generation = 0;
    const button = (cls, onclick) => h('button', { type: 'button', class: cls, onclick });
    this.video = h('video', { playsinline: true, muted: true, autoplay: true });
    this.video.muted = true;
    this.message = h('p', { class: 'player-msg', role: 'status' });
    this.unmute = button('unmute', (event) => {
      event.stopPropagation(); // not a click on the picture
      this.toggleMute();
    });
    this.playButton = button('playpause', () => this.togglePlay());
    this.quality = h('select', { class: 'quality', 'aria-label': 'Quality', hidden: true, disabled: true });
    this.quality.addEventListener('change', () => this.setLevel(Number(this.quality.value)));
    this.fullscreen = button('fullscreen', () => this.toggleFullscreen());
    this.pip = button('pip', () => this.togglePip());
    this.pip.hidden = !document.pictureInPictureEnabled;
    this.title = h('span', { class: 'player-title' });
    this.badge = h('span', { class: 'badge', hidden: true });
    this.stage = h('div', { class: 'stage', onclick: () => this.togglePlay() }, this.video, this.message, this.unmute);
    const controls = h('div', { class: 'player-controls' }, this.playButton, this.quality, this.pip, this.fullscreen);
    const head = h('div', { class: 'player-head' });
    if (extra) {
      this.picker = h('select', { class: 'source-picker', onchange: () => hooks.pick(this, this.picker.value) });
      this.close = button('close', () => hooks.close(this));
      this.close.textContent = '✕';
      head.append(this.picker, this.badge);
      controls.append(this.close);
    } else {
      head.append(this.title, this.badge);
    }
    this.el = h('section', { class: 'player', onpointerdown: () => hooks.select(this), onfocusin: () => hooks.select(this) },
      head, this.stage, controls);
    for (const type of ['play', 'pause', 'emptied', 'volumechange', 'enterpictureinpicture', 'leavepictureinpicture']) {
      this.video.addEventListener(type, () => this.sync());
    }
    this.video.addEventListener('playing', () => this.say(''));
    this.video.addEventListener('error', () => this.nativeError());
    this.onFullscreen = () => this.sync();
    document.addEventListener('fullscreenchange', this.onFullscreen);
    this.setNumber(number);
    this.resetQuality();
  }

  /** Its place among the players (labels say "player 2"). */
  setNumber(number) {
    this.number = number;
    this.el.setAttribute('aria-label', `Player ${number}`);
    this.video.setAttribute('aria-label', `Video of player ${number}`);
    if (this.picker) this.picker.setAttribute('aria-label', `Player ${number} source`);
    if (this.close) this.close.setAttribute('aria-label', `Close player ${number}`);
    this.sync();
  }

  /** Button labels from the video's state. */
  sync() {
    const { video, number } = this;
    const sound = video.muted ? 'Unmute' : 'Mute';
    if (this.unmute.__label !== sound) {
      this.unmute.__label = sound;
      this.unmute.replaceChildren(speaker(video.muted), sound);
    }
    setAttr(this.unmute, 'aria-label', `${sound} player ${number}`);
    this.el.classList.toggle('muted', video.muted);
    const action = video.paused ? 'Play' : 'Pause';
    setText(this.playButton, action);
    setAttr(this.playButton, 'aria-label', `${action} player ${number}`);
    setText(this.fullscreen, document.fullscreenElement === this.el ? 'Exit full screen' : 'Full screen');
    const inPip = document.pictureInPictureElement === video;
    setText(this.pip, inPip ? 'Exit PiP' : 'PiP');
    setAttr(this.pip, 'aria-label', inPip ? 'Exit picture in picture' : 'Picture in picture');
  }

  say(text) {
    setText(this.message, text);
  }

  /** Plays `spec` ({kind, slug|id}) from `url`; the same source and URL again changes nothing. */
  load(spec, url, label, state) {
    const key = spec.kind === 'channel' ? `channel:${spec.slug}` : `stream:${spec.id}`;
    setText(this.title, label);
    badge(this.badge, state);
    this.badge.hidden = !state;
    if (this.key === key && this.url === url) return;
    this.key = key;
    this.kind = spec.kind;
    this.url = url;
    this.el.dataset.source = key;
    this.restart();
  }

  restart() {
    this.lastCc = null;
    this.recoveries = 0;
    this.start();
  }

  teardown() {
    this.generation += 1;
    clearTimeout(this.retry);
    if (this.hls) this.hls.destroy();
    this.hls = null;
    if (this.video.hasAttribute('src')) {
      this.video.removeAttribute('src');
      this.video.load();
    }
    this.resetQuality();
  }

  async start() {
    this.teardown();
    const mine = this.generation;
    if (!this.url) {
      this.say(this.kind === 'channel' ? 'Waiting for the channel…' : 'Looking up the stream…');
      return;
    }
    this.say('Loading…');
    const Hls = await preloadPlayer();
    if (mine !== this.generation) return;
    if (Hls && Hls.isSupported()) {
      this.startHls(Hls, mine);
    } else if (this.video.canPlayType('application/vnd.apple.mpegurl')) {
      this.video.src = this.url;
      play(this.video);
    } else {
      this.say(Hls ? 'This browser cannot play HLS (no Media Source Extensions).'
        : 'The player library (assets/vendor/hls.js-1.7.4) could not be loaded.');
    }
  }

  startHls(Hls, mine) {
    const hls = new Hls({ workerPath: WORKER, enableWorker: true, backBufferLength: 30 });
    this.hls = hls;
    this.Hls = Hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      this.updateLevels();
      play(this.video);
      this.hooks.loaded(this);
    });
    hls.on(Hls.Events.LEVELS_UPDATED, () => this.updateLevels());
    hls.on(Hls.Events.LEVEL_SWITCHED, () => this.updateAuto());
    hls.on(Hls.Events.FRAG_CHANGED, (_, data) => {
      const { cc } = data.frag;
      if (this.lastCc !== null && cc !== this.lastCc) this.hooks.discontinuity(this);
      this.lastCc = cc;
    });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (mine === this.generation && data.fatal) this.fatal(data);
    });
    hls.loadSource(this.url);
    hls.attachMedia(this.video);
  }

  fatal(data) {
    if (data.type === this.Hls.ErrorTypes.MEDIA_ERROR && this.recoveries < 2) {
      this.recoveries += 1;
      if (this.recoveries === 2) this.hls.swapAudioCodec();
      this.hls.recoverMediaError();
      return;
    }
    const status = data.response && data.response.code;
    if (this.kind === 'channel') this.retryChannel(status === 503);
    else this.failed(status ? `HTTP ${status}` : data.details || data.type);
  }

  nativeError() {
    if (this.hls || !this.video.hasAttribute('src')) return;
    if (this.kind === 'channel') this.retryChannel(false);
    else this.failed('media error');
  }

  failed(why) {
    this.teardown();
    this.say(`This stream stopped playing (${why}).`);
    this.hooks.failed(this, why);
  }

  /** A channel is retried as long as the tile shows it. */
  retryChannel(down) {
    this.teardown();
    this.say(down ? 'Waiting for a healthy source…' : 'Reconnecting to the channel…');
    this.retry = setTimeout(() => this.start(), down ? RETRY_DOWN_MS : RETRY_MS);
  }

  resetQuality() {
    this.quality.replaceChildren(h('option', { value: -1 }, 'Auto'));
    this.quality.hidden = this.quality.disabled = true;
  }

  updateLevels() {
    const levels = this.hls.levels || [];
    const options = levels.map((level, index) => ({ level, index }))
      .sort((a, b) => (b.level.bitrate || 0) - (a.level.bitrate || 0))
      .map(({ level, index }) => h('option', { value: index },
        `${level.height ? `${level.height}p` : `Level ${index + 1}`} · ${fmtBitrate(level.bitrate)}`));
    this.quality.replaceChildren(h('option', { value: -1 }, 'Auto'), ...options);
    this.quality.value = this.hls.manualLevel;
    if (this.quality.selectedIndex < 0) this.quality.value = -1;
    // One level: nothing to choose.
    this.quality.hidden = this.quality.disabled = levels.length < 2;
    this.updateAuto();
  }

  updateAuto() {
    const level = this.hls && this.hls.levels[this.hls.currentLevel];
    const auto = this.quality.value === '-1' && level && level.height;
    setText(this.quality.options[0], auto ? `Auto (${level.height}p)` : 'Auto');
  }

  setLevel(index) {
    if (!this.hls) return;
    this.hls.currentLevel = index; // -1: automatic
    this.updateAuto();
  }

  togglePlay() {
    if (this.video.paused) play(this.video);
    else this.video.pause();
  }

  toggleMute() {
    this.el.classList.add('sound-used'); // the big Unmute button becomes a small one
    this.setMuted(!this.video.muted);
    if (!this.video.muted) this.hooks.unmuted(this);
  }

  setMuted(muted) {
    this.video.muted = muted;
    if (!muted && this.video.paused) play(this.video);
  }

  toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else if (this.el.requestFullscreen) this.el.requestFullscreen().catch(() => {});
    else if (this.video.webkitEnterFullscreen) this.video.webkitEnterFullscreen(); // iOS
  }

  togglePip() {
    const pip = document.pictureInPictureElement === this.video
      ? document.exitPictureInPicture() : this.video.requestPictureInPicture();
    pip.catch(() => {});
  }

  destroy() {
    if (document.pictureInPictureElement === this.video) document.exitPictureInPicture().catch(() => {});
    this.teardown();
    document.removeEventListener('fullscreenchange', this.onFullscreen);
    this.el.remove();
  }
}
