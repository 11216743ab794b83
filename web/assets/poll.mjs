// Polling while the tab is visible.
//
// Why polling and not SSE/WebSocket: the state lives in shared JSON
// endpoints (`channels`, `channels/{slug}/streams`, ...) that work through
// any reverse proxy and cache and across replicas, with no long-lived
// connection per viewer. A poller runs its task, waits `interval` after it
// finishes (never two at once), stops while the tab is hidden and runs at
// once when it is shown again.

const pollers = new Set();

document.addEventListener('visibilitychange', () => {
  for (const poller of pollers) {
    clearTimeout(poller.timer);
    if (!document.hidden) poller.poke();
  }
});

export class Poller {
  /** `task`: an async function that reports its own errors on the page. */
  constructor(task, interval) {
    this.task = task;
    this.interval = interval;
  }

  start() {
    pollers.add(this);
    this.poke();
    return this;
  }

  stop() {
    pollers.delete(this);
    clearTimeout(this.timer);
  }

  /** Runs now, or right after the run in flight. */
  poke() {
    if (!pollers.has(this)) return;
    if (this.running) this.again = true;
    else this.run();
  }

  async run() {
    clearTimeout(this.timer);
    this.running = true;
    await this.task().catch(() => {}); // never an unhandled rejection
    this.running = false;
    if (!pollers.has(this) || document.hidden) return;
    if (this.again) {
      this.again = false;
      this.run();
    } else {
      this.timer = setTimeout(() => this.run(), this.interval);
    }
  }
}
