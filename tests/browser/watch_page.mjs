// Drives headless Chromium for tests/watch_page.rs: one browser per process,
// commanded line by line over stdin, so the Rust test keeps every decision
// and assertion (and can break a stream's source between two steps).
//
//   node tests/browser/watch_page.mjs [--chromium /usr/bin/chromium]
//
// Prints {"event":"ready","version":...} once the browser runs, then for
// each command line {"id":N,"cmd":...,...} one answer line
// {"id":N,"ok":true,"value":...} or {"id":N,"ok":false,"error":"..."}.
// Commands:
//   open {width, height}          a fresh context (no cache, no cookies)
//                                 and page: {page}
//   goto {page, url}              navigates, waits for `load`:
//                                 {status, contentType, url}
//   eval {page, expr}             the value of a JavaScript expression
//   wait {page, expr, timeoutMs}  polls the expression every 100 ms until
//                                 it is truthy: {done, value, elapsedMs}
//                                 (done false and the last value on timeout)
//   click {page, selector}        clicks (waits up to 5 s for it to be
//                                 visible, enabled and stable)
//   screenshot {page, path}       a full-page PNG
//   log {page}                    {consoleErrors, pageErrors, console}
//   network {page}                every finished or failed request:
//                                 {url, method, resourceType, status,
//                                 contentType, contentEncoding,
//                                 contentLength, bodySize, failure}
//   close {page}                  closes the page's context
//   quit                          closes the browser and exits 0
// The process also ends when stdin closes (the test went away).
//
// Every page gets an init script (before any of its own scripts) that
// records, in `window.__watchTest`:
//   firstFrame       {at, presented, how}: the first video frame handed to
//                    the compositor (requestVideoFrameCallback), in ms since
//                    performance.timeOrigin (the navigation's start)
//   firstTimeupdate  ms of the first `timeupdate` with currentTime > 0
//   samples          every 250 ms: {at, videos: [{source, t, paused,
//                    muted, readyState}]} for every <video> in the page

import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const INIT_SCRIPT = `(() => {
  const record = { firstFrame: null, firstTimeupdate: null, samples: [] };
  Object.defineProperty(window, '__watchTest', { value: record });
  const watched = new WeakSet();
  const watch = (video) => {
    if (!(video instanceof HTMLVideoElement) || watched.has(video)) return;
    watched.add(video);
    if (typeof video.requestVideoFrameCallback !== 'function') return;
    video.requestVideoFrameCallback((now, meta) => {
      if (record.firstFrame !== null) return;
      const presented = meta && meta.presentationTime > 0 ? meta.presentationTime : null;
      record.firstFrame = { at: presented ?? now, presented, callback: now, how: 'requestVideoFrameCallback' };
    });
  };
  // Media events do not bubble, but listeners capturing on window see them.
  for (const type of ['loadstart', 'loadedmetadata', 'play', 'playing']) {
    addEventListener(type, (event) => watch(event.target), true);
  }
  addEventListener('timeupdate', (event) => {
    const video = event.target;
    if (record.firstTimeupdate === null && video instanceof HTMLMediaElement && video.currentTime > 0) {
      record.firstTimeupdate = performance.now();
    }
  }, true);
  setInterval(() => {
    const videos = [...document.querySelectorAll('video')].map((video) => {
      const tile = video.closest('.player');
      return {
        source: tile ? tile.getAttribute('data-source') : null,
        t: video.currentTime,
        paused: video.paused,
        muted: video.muted,
        readyState: video.readyState,
      };
    });
    record.samples.push({ at: performance.now(), videos });
  }, 250);
})();`;

function parseArgs(argv) {
  const options = { chromium: '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--chromium' && i + 1 < argv.length) {
      options.chromium = argv[++i];
    } else {
      throw new Error(`unexpected argument ${argv[i]}`);
    }
  }
  return options;
}

const print = (object) => process.stdout.write(`${JSON.stringify(object)}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const pages = new Map();
let nextPage = 1;

async function open(browser, { width = 1280, height = 800 }) {
  const context = await browser.newContext({ viewport: { width, height } });
  await context.addInitScript({ content: INIT_SCRIPT });
  const page = await context.newPage();
  const entry = { context, page, consoleErrors: [], pageErrors: [], console: [], network: [], pending: [] };
  page.on('console', (message) => {
    const item = { type: message.type(), text: message.text(), location: message.location() };
    entry.console.push(item);
    if (message.type() === 'error') entry.consoleErrors.push(item);
  });
  page.on('pageerror', (error) => entry.pageErrors.push(String(error && error.stack ? error.stack : error)));
  const note = async (request, failure) => {
    const response = failure ? null : await request.response().catch(() => null);
    const sizes = await request.sizes().catch(() => null);
    const headers = response ? await response.allHeaders().catch(() => ({})) : {};
    entry.network.push({
      url: request.url(),
      method: request.method(),
      resourceType: request.resourceType(),
      status: response ? response.status() : null,
      contentType: headers['content-type'] ?? null,
      contentEncoding: headers['content-encoding'] ?? null,
      contentLength: headers['content-length'] !== undefined ? Number(headers['content-length']) : null,
      bodySize: sizes ? sizes.responseBodySize : null,
      failure,
    });
  };
  page.on('requestfinished', (request) => entry.pending.push(note(request, null)));
  page.on('requestfailed', (request) => {
    const failure = request.failure();
    entry.pending.push(note(request, failure ? failure.errorText : 'failed'));
  });
  const id = nextPage++;
  pages.set(id, entry);
  return { page: id };
}

function entryOf(command) {
  const entry = pages.get(command.page);
  if (!entry) throw new Error(`no page ${command.page}`);
  return entry;
}

async function waitFor(page, expr, timeoutMs) {
  const started = Date.now();
  let value = null;
  for (;;) {
    try {
      value = await page.evaluate(expr);
      if (value) return { done: true, value, elapsedMs: Date.now() - started };
    } catch (error) {
      // A navigation in between destroys the context: try again.
      value = { evalError: String(error && error.message ? error.message : error) };
    }
    if (Date.now() - started >= timeoutMs) return { done: false, value, elapsedMs: Date.now() - started };
    await sleep(100);
  }
}

async function run(browser, command) {
  switch (command.cmd) {
    case 'open':
      return open(browser, command);
    case 'goto': {
      const { page } = entryOf(command);
      const response = await page.goto(command.url, { waitUntil: 'load', timeout: 15_000 });
      return {
        status: response ? response.status() : null,
        contentType: response ? (await response.allHeaders())['content-type'] ?? null : null,
        url: page.url(),
      };
    }
    case 'eval':
      return entryOf(command).page.evaluate(command.expr);
    case 'wait':
      return waitFor(entryOf(command).page, command.expr, command.timeoutMs ?? 10_000);
    case 'click':
      await entryOf(command).page.click(command.selector, { timeout: 5_000 });
      return null;
    case 'screenshot':
      await entryOf(command).page.screenshot({ path: command.path, fullPage: true });
      return null;
    case 'log': {
      const entry = entryOf(command);
      return { consoleErrors: entry.consoleErrors, pageErrors: entry.pageErrors, console: entry.console };
    }
    case 'network': {
      const entry = entryOf(command);
      await Promise.all(entry.pending);
      return entry.network;
    }
    case 'close': {
      const entry = entryOf(command);
      pages.delete(command.page);
      await entry.context.close();
      return null;
    }
    default:
      throw new Error(`unknown command ${command.cmd}`);
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  // Whatever happens, this process ends (the Rust test waits for it).
  setTimeout(() => {
    process.stderr.write('watchdog: the browser session overran 10 minutes\n');
    process.exit(2);
  }, 600_000).unref();
  // No --autoplay-policy flag: the page must autoplay muted as Chromium
  // allows by default.
  const browser = await chromium.launch({
    executablePath: options.chromium,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  print({ event: 'ready', version: browser.version() });
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let command;
    try {
      command = JSON.parse(line);
    } catch (error) {
      print({ id: null, ok: false, error: `not JSON: ${line}` });
      continue;
    }
    if (command.cmd === 'quit') {
      print({ id: command.id, ok: true, value: null });
      break;
    }
    try {
      const value = await run(browser, command);
      print({ id: command.id, ok: true, value: value === undefined ? null : value });
    } catch (error) {
      print({ id: command.id, ok: false, error: String(error && error.stack ? error.stack : error) });
    }
  }
  await browser.close();
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`harness: ${error && error.stack ? error.stack : error}\n`);
    process.exit(2);
  },
);
