// Plays an HLS URL with hls.js in headless Chromium and says whether it kept
// playing. Used by tests/channel_players.rs; runnable by hand:
//
//   node tests/browser/play_channel.mjs PAGE_URL [--seconds 25]
//        [--min-advance 15] [--max-stall 8] [--chromium /usr/bin/chromium]
//
// PAGE_URL is player.html (served over http) with `?src=<HLS URL>`.
// Prints one JSON object per line on stdout:
//   {"event":"playing", ...}   once the video plays (the caller may now
//                              break the stream's source)
//   {"event":"sample", ...}    once a second
//   {"event":"result", ...}    at the end, with every measurement
// Exit code: 0 when it played as required (no fatal hls.js error, the
// position advanced at least --min-advance seconds over --seconds, never
// stalled longer than --max-stall); 1 when it did not; 2 when the harness
// itself failed (browser, page).

import { chromium } from 'playwright-core';

function parseArgs(argv) {
  const options = {
    page: null,
    seconds: 25,
    minAdvance: 15,
    maxStall: 8,
    chromium: '/usr/bin/chromium',
    startTimeout: 20,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      i += 1;
      if (i >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[i];
    };
    switch (arg) {
      case '--seconds': options.seconds = Number(value()); break;
      case '--min-advance': options.minAdvance = Number(value()); break;
      case '--max-stall': options.maxStall = Number(value()); break;
      case '--chromium': options.chromium = value(); break;
      case '--start-timeout': options.startTimeout = Number(value()); break;
      default:
        if (arg.startsWith('--') || options.page) throw new Error(`unexpected argument ${arg}`);
        options.page = arg;
    }
  }
  if (!options.page) throw new Error('usage: play_channel.mjs PAGE_URL [options]');
  return options;
}

const print = (object) => process.stdout.write(`${JSON.stringify(object)}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The measurements from the page's record, from the first playing sample on.
function measure(report, options) {
  const samples = report.samples.filter((s) => report.firstPlayingAt !== null && s.at >= report.firstPlayingAt);
  const first = samples[0] ?? null;
  const last = samples[samples.length - 1] ?? null;
  // Longest wall time during which the position did not move.
  let maxStall = 0;
  let stallFrom = first;
  let worstStallEndsAt = null;
  for (const s of samples) {
    if (s.currentTime > stallFrom.currentTime + 0.01) {
      stallFrom = s;
    } else if (s.at - stallFrom.at > maxStall) {
      maxStall = s.at - stallFrom.at;
      worstStallEndsAt = s.at;
    }
  }
  const advance = first && last ? last.currentTime - first.currentTime : 0;
  const frames = first && last && first.frames !== null ? last.frames - first.frames : null;
  const ccs = [...new Set(report.fragments.map((f) => f.cc))];
  const failures = [];
  if (!report.supported) failures.push('hls.js says MSE is not supported');
  if (report.firstPlayingAt === null) failures.push(`never played within ${options.startTimeout} s`);
  if (report.fatal) failures.push(`fatal hls.js error: ${report.fatal.type}/${report.fatal.details}`);
  if (advance < options.minAdvance) failures.push(`position advanced ${advance.toFixed(2)} s < ${options.minAdvance} s`);
  if (maxStall > options.maxStall) failures.push(`stalled ${maxStall.toFixed(2)} s > ${options.maxStall} s`);
  return {
    ok: failures.length === 0,
    failures,
    hlsVersion: report.hlsVersion,
    firstPlayingAt: report.firstPlayingAt,
    watched: first && last ? last.at - first.at : 0,
    startPosition: first ? first.currentTime : null,
    endPosition: last ? last.currentTime : null,
    advance,
    frames,
    maxStall,
    worstStallEndsAt,
    discontinuitiesPlayed: ccs,
    fragmentsPlayed: report.fragments.length,
    waiting: report.waiting,
    seeks: report.seeks,
    fatal: report.fatal,
    errors: report.errors,
    fragments: report.fragments,
  };
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  // Whatever happens, this process ends: the Rust test waits for it.
  setTimeout(() => {
    print({ event: 'result', ok: false, failures: ['watchdog: the script overran'] });
    process.exit(2);
  }, (options.seconds + options.startTimeout + 30) * 1000).unref();

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
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const pageErrors = [];
  try {
    const page = await browser.newPage();
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    await page.goto(options.page, { waitUntil: 'load', timeout: 10_000 });
    const report = () => page.evaluate(() => window.report);

    const startDeadline = Date.now() + options.startTimeout * 1000;
    let current = await report();
    while (current.firstPlayingAt === null && !current.fatal && Date.now() < startDeadline) {
      await sleep(100);
      current = await report();
    }
    if (current.firstPlayingAt !== null) {
      print({ event: 'playing', at: current.firstPlayingAt, hlsVersion: current.hlsVersion });
      const until = Date.now() + options.seconds * 1000;
      while (Date.now() < until) {
        await sleep(1000);
        current = await report();
        const s = current.samples[current.samples.length - 1];
        print({ event: 'sample', ...s, fragment: current.fragments[current.fragments.length - 1] ?? null, errors: current.errors.length });
        if (current.fatal) break;
      }
    }
    const result = measure(current, options);
    result.pageErrors = pageErrors;
    print({ event: 'result', ...result });
    return result.ok ? 0 : 1;
  } finally {
    await browser.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    print({ event: 'result', ok: false, failures: [`harness: ${error && error.stack ? error.stack : error}`] });
    process.exit(2);
  },
);
