#!/usr/bin/env node
// Open the edgecnn page in headless Chromium, classify images through the page's upload path,
// print ONE JSON object on stdout. Any failure: exit 1 with a one-line message on stderr.
//
//   node run_in_browser.mjs --url 'http://127.0.0.1:PORT/web/index.html?model=../models/m.tflite' \
//        --images a.png b.png            (or --images list.json: a JSON array of paths)
//        [--webcam] [--timeout 60000] [--screenshot out.png] [--chromium /usr/bin/chromium]
// --webcam also classifies one frame from Chromium's fake camera through the webcam buttons.
import {chromium} from 'playwright-core';
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {basename, join, resolve} from 'node:path';

function parseArgs(argv) {
  const opts = {images: [], timeout: 60000, chromium: process.env.CHROMIUM ?? '/usr/bin/chromium'};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--url') opts.url = value();
    else if (a === '--timeout') opts.timeout = Number(value());
    else if (a === '--screenshot') opts.screenshot = value();
    else if (a === '--chromium') opts.chromium = value();
    else if (a === '--webcam') opts.webcam = true;
    else if (a === '--images') {
      while (i + 1 < argv.length && !argv[i + 1].startsWith('--')) opts.images.push(argv[++i]);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.url) throw new Error('--url is required');
  if (!opts.images.length && !opts.webcam) throw new Error('--images (or --webcam) is required');
  if (opts.images.length === 1 && opts.images[0].endsWith('.json')) {
    opts.images = JSON.parse(readFileSync(opts.images[0], 'utf8'));
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const userDataDir = mkdtempSync(join(tmpdir(), 'edgecnn-chromium-'));
  let context;
  // Any page error / console error / non-local request aborts the run.
  let rejectFailure;
  const failure = new Promise((_, reject) => (rejectFailure = reject));
  failure.catch(() => {});
  const withFailure = (p, what) => Promise.race([p, failure, new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`timeout after ${opts.timeout} ms ${what}`)), opts.timeout))]);
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: opts.chromium,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        ...(opts.webcam ? ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'] : [])],
    });
    const page = context.pages()[0] ?? await context.newPage();
    page.on('pageerror', (e) => rejectFailure(new Error(`page error: ${e.message}`)));
    page.on('console', (m) => {
      if (m.type() === 'error') rejectFailure(new Error(`console error: ${m.text()}`));
    });
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (!['data:', 'blob:'].includes(u.protocol) && !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) {
        rejectFailure(new Error(`non-local request: ${r.url()}`));
      }
    });
    page.on('response', (r) => {
      if (r.status() >= 400) rejectFailure(new Error(`HTTP ${r.status()} for ${r.url()}`));
    });

    await withFailure(page.goto(opts.url), 'loading the page');
    const summary = await withFailure(page.evaluate(() => window.edgecnnReady), 'loading the model');
    const tLoaded = Date.now();

    const results = [];
    for (const image of opts.images) {
      const n = await page.evaluate(() => window.edgecnnResults.length);
      if (/^https?:/.test(image)) {
        results.push(await withFailure(page.evaluate((u) => window.edgecnnClassify(u), image), `classifying ${image}`));
      } else {
        await page.setInputFiles('#image-file', resolve(image));
        await withFailure(page.waitForFunction((k) => window.edgecnnResults.length > k, n, {timeout: 0}),
          `classifying ${image}`);
        results.push(await page.evaluate((k) => window.edgecnnResults[k], n));
      }
      const r = results.at(-1);
      if (r.error) throw new Error(`classifying ${image}: ${r.error}`);
      r.image = basename(image);
    }
    if (opts.webcam) {
      const n = await page.evaluate(() => window.edgecnnResults.length);
      await page.click('#webcam');
      await withFailure(page.waitForFunction(() => document.getElementById('video').readyState >= 2, null,
        {timeout: 0}), 'starting the webcam');
      await page.click('#snap');
      await withFailure(page.waitForFunction((k) => window.edgecnnResults.length > k, n, {timeout: 0}),
        'classifying a webcam frame');
      const r = await page.evaluate((k) => window.edgecnnResults[k], n);
      if (r.error) throw new Error(`classifying the webcam frame: ${r.error}`);
      results.push(r);
    }
    if (opts.screenshot) await page.screenshot({path: opts.screenshot, fullPage: true});

    const out = {
      ...summary,
      results: results.map(({image, top, ms}) => ({image, top, ms: Math.round(ms * 10) / 10})),
      timing: {load_ms: tLoaded - t0, classify_ms: Date.now() - tLoaded},
    };
    process.stdout.write(JSON.stringify(out) + '\n');
  } finally {
    await context?.close().catch(() => {});
    rmSync(userDataDir, {recursive: true, force: true});
  }
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`run_in_browser: ${String(err?.message ?? err).split('\n')[0]}\n`);
  process.exit(1);
});
