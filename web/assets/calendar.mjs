// The schedule view: the season's sessions in the viewer's local time, each
// past, live or upcoming, and a countdown to the next one.

import { h, keyed, fill, badge, setText, setAttr, fmtDateTime, fmtCountdown, relTime, timeZoneLabel } from './dom.mjs';
import { getJSON, describeError } from './api.mjs';
import { Poller } from './poll.mjs';

const MINUTE = 60000;
/** The service keeps a session live for a while past its planned end (overrun); believe it this long at most. */
const MAX_OVERRUN_MS = 60 * MINUTE;
const day = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short', timeZone: 'UTC' });

export function mount(main) {
  const view = new CalendarView(main);
  return { unmount: () => view.destroy() };
}

/** A session's state now, from its start and duration (the service's own "live" kept during an overrun). */
function stateOf(session, now) {
  if (!session.start_utc) return session.status;
  const start = Date.parse(session.start_utc);
  const end = start + session.duration_minutes * MINUTE;
  if (now < start) return 'upcoming';
  if (now < end || (session.status === 'live' && now < end + MAX_OVERRUN_MS)) return 'live';
  return 'past';
}

class CalendarView {
  constructor(main) {
    this.meta = h('p', { class: 'hint' });
    this.liveLine = h('p', { class: 'live-line', hidden: true });
    this.nextName = h('p', { class: 'next-name' }, 'Loading the calendar…');
    this.nextWhen = h('p', { class: 'next-when' });
    this.countdown = h('p', { id: 'countdown', class: 'countdown' }, '–');
    this.racesEl = h('div', { id: 'races', class: 'races' });
    main.append(
      h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, 'Schedule'), this.meta),
      h('section', { class: 'panel next-panel', 'aria-labelledby': 'next-h' }, this.liveLine,
        h('h2', { id: 'next-h', class: 'small-heading' }, 'Next session'), this.nextName, this.nextWhen, this.countdown),
      this.racesEl);
    this.poller = new Poller(() => this.refresh(), 300000).start();
    this.ticker = setInterval(() => this.tick(), 1000);
    this.render(Date.now());
  }

  destroy() {
    this.poller.stop();
    clearInterval(this.ticker);
  }

  async refresh() {
    try {
      this.schedule = await getJSON('schedule');
      this.error = null;
    } catch (err) {
      this.error = describeError(err);
    }
    this.poller.interval = this.error ? 30000 : 300000;
    this.render(Date.now());
  }

  /** Every second the countdown; every minute (or when the next session starts) the states. */
  tick() {
    const now = Date.now();
    if (Math.floor(now / MINUTE) !== this.minute || (this.nextStart && now >= this.nextStart)) this.render(now);
    else this.renderCountdown(now);
  }

  render(now) {
    this.minute = Math.floor(now / MINUTE);
    const { schedule } = this;
    const updated = schedule && schedule.updated_at ? ` Calendar fetched ${relTime(schedule.updated_at)}.` : '';
    setText(this.meta, `Times in ${timeZoneLabel()}.${schedule && schedule.season ? ` Season ${schedule.season}.` : ''}${updated}`);
    const races = (schedule && schedule.races) || [];
    const all = races.flatMap((race) => race.sessions.map((session) => ({ race, session, state: stateOf(session, now) })));
    this.renderRaces(races, all);
    const live = all.find((s) => s.state === 'live');
    this.liveLine.hidden = !live;
    if (live) {
      fill(this.liveLine, h('span', {}, h('span', { class: 'live-dot', 'aria-hidden': 'true' }),
        `Live now: ${live.race.race_name}, ${live.session.name}`), h('a', { href: 'watch', class: 'button-link' }, 'Watch'));
    }
    const next = all.filter((s) => Date.parse(s.session.start_utc) > now)
      .sort((a, b) => Date.parse(a.session.start_utc) - Date.parse(b.session.start_utc))[0];
    this.nextStart = next ? Date.parse(next.session.start_utc) : null;
    let name = races.length ? 'No upcoming session in the calendar.' : 'No calendar yet.';
    if (next) name = `${next.race.race_name}, ${next.session.name}`;
    else if (!schedule) name = this.error ? `Could not load the calendar. ${this.error}` : 'Loading the calendar…';
    setText(this.nextName, name);
    setText(this.nextWhen, next ? `Starts ${fmtDateTime(next.session.start_utc)}` : '');
    this.renderCountdown(now);
  }

  renderCountdown(now) {
    const left = this.nextStart ? fmtCountdown((this.nextStart - now) / 1000) : null;
    setText(this.countdown, left ? `in ${left}` : '–');
    setAttr(this.countdown, 'aria-label', left ? `Starts in ${left}` : 'No upcoming session');
  }

  renderRaces(races, all) {
    let empty = ['The calendar has not been fetched yet. The service reads it at start and once a day (',
      h('code', {}, 'schedule.url'), ', with ', h('code', {}, 'schedule.enabled'), ' on); ',
      h('code', {}, 'POST schedule/refresh'), ' fetches it now.'];
    if (!this.schedule) empty = this.error ? `Could not load the calendar. ${this.error}` : 'Loading the calendar…';
    keyed(this.racesEl, races, {
      key: (race) => race.round,
      create: (race) => h('article', { class: 'panel race', 'aria-labelledby': `race-${race.round}` },
        h('h2', { id: `race-${race.round}` }), h('p', { class: 'race-meta' }), h('ol', { class: 'sessions' })),
      update: (article, race) => {
        const [title, meta, list] = article.children;
        const states = all.filter((s) => s.race === race).map((s) => s.state);
        setText(title, `Round ${race.round} · ${race.race_name}`);
        setText(meta, [race.circuit, [race.locality, race.country].filter(Boolean).join(', ')].filter(Boolean).join(' · '));
        article.classList.toggle('done', states.every((state) => state === 'past'));
        article.classList.toggle('has-live', states.includes('live'));
        keyed(list, race.sessions, {
          key: (session) => `${session.type}-${session.date}`,
          create: () => h('li', { class: 'session' }, h('span', { class: 'session-name' }), h('time'), h('span', { class: 'badge' })),
          update: (li, session, index) => this.updateSession(li, session, states[index]),
        });
      },
      empty,
    });
  }

  updateSession(li, session, state) {
    const [name, time, label] = li.children;
    setAttr(li, 'data-state', state);
    setText(name, session.name);
    setAttr(time, 'datetime', session.start_utc || session.date);
    setText(time, session.start_utc ? fmtDateTime(session.start_utc)
      : `${day.format(Date.parse(session.date))}, time to be announced`);
    badge(label, state, state === 'live' ? 'live now' : state);
    const link = li.querySelector('a.watch');
    if (state === 'live' && !link) li.append(h('a', { href: 'watch', class: 'watch button-link' }, 'Watch'));
    else if (state !== 'live' && link) link.remove();
  }
}
