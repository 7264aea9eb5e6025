// Drives the dashboard in Debian's chromium (headless) against a jobq that
// tests/integration/test_dashboard.py started and seeded:
//   node dashboard.mjs SEED.json OUTDIR
// SEED.json: {"url", "ids": {...}, "queues": {...}} from the seeding.
// Each check prints "ok NAME" or "FAIL NAME: why"; the exit code is the
// number of failures. Screenshots of every page (light, dark, phone width)
// go to OUTDIR.
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(process.env.JOBQ_BROWSER_NODE_PATH + '/');
const { chromium } = require('playwright-core');
const [seedFile, outDir] = process.argv.slice(2);
const seed = JSON.parse(fs.readFileSync(seedFile, 'utf8'));
const base = seed.url;
fs.mkdirSync(outDir, { recursive: true });

const api = async (method, path, body) => {
  const r = await fetch(base + path, { method, headers: { 'Content-Type': 'application/json',
    Authorization: 'Bearer ' + seed.keys.admin },
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
};

let failures = 0;
const check = async (name, fn) => {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
};
const assert = (cond, msg) => { if (!cond) throw new Error(msg); };

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
const problems = []; // console errors, page errors, requests elsewhere, CSP reports
context.on('request', (req) => {
  const u = new URL(req.url());
  if (u.origin !== base && u.protocol !== 'data:') problems.push(`request to another origin: ${req.url()}`);
});
const page = await context.newPage();
page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
const signIn = async (p, key) => {
  await p.goto(base + '/ui/');
  await p.waitForSelector('#sign-in');
  await p.fill('#key', key);
  await p.click('#sign-in button[type="submit"]');
  await p.waitForSelector('#sign-out');
};
const tile = async (id) => Number((await page.textContent(`[data-tile="${id}"] .v`)).replace(/,/g, ''));
const shoot = async (name) => {
  for (const theme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: theme });
    await page.screenshot({ path: `${outDir}/${name}-${theme}.png`, fullPage: true });
  }
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${outDir}/${name}-phone.png`, fullPage: true });
  await page.setViewportSize({ width: 1366, height: 768 });
};

await check('sign-in with a key holds an HttpOnly SameSite=Strict cookie, not the key', async () => {
  await page.goto(base + '/ui/');
  await page.waitForSelector('#sign-in');
  await shoot('sign-in');
  await page.fill('#key', 'not-a-key');
  await page.click('#sign-in button[type="submit"]');
  await page.waitForSelector('#sign-in .error:has-text("not valid")');
  await signIn(page, seed.keys.admin);
  const [c] = (await context.cookies()).filter((x) => x.name === 'jobq_session');
  assert(c && c.httpOnly && c.sameSite === 'Strict', `cookie ${JSON.stringify(c)}`);
  assert(!(await page.evaluate(() => document.cookie)).includes('jobq_session'), 'script can read the cookie');
  assert(!(await page.evaluate(() => JSON.stringify(localStorage))).includes(seed.keys.admin), 'key kept in storage');
  problems.length = 0; // the refused sign-in above was meant to fail
});

await check('overview tiles equal the API counts', async () => {
  await page.goto(base + '/ui/');
  await page.waitForSelector('[data-tile="queued"]');
  await page.waitForSelector('#queues tbody tr');
  await page.waitForTimeout(1200); // a tick after the page's own reads
  const stats = (await api('GET', '/v1/stats')).body;
  for (const s of ['queued', 'running', 'retrying', 'pending']) {
    const shown = await tile(s), want = stats.counts[s] || 0;
    assert(shown === want, `tile ${s} shows ${shown}, /v1/stats says ${want}`);
  }
  const breakers = (await api('GET', '/v1/breakers')).body.breakers.filter((b) => b.state === 'open').length;
  assert(await tile('breakers') === breakers, `open breakers tile != ${breakers}`);
  const paused = (await api('GET', '/v1/queues')).body.queues.filter((q) => q.paused).length;
  assert(await tile('paused') === paused, `paused tile != ${paused}`);
  assert(await page.locator('.uplot').count() === 2, 'two charts drawn');
  await shoot('overview');
});

await check('a job enqueued through the API appears without a reload within 2 s', async () => {
  await page.goto(base + '/ui/jobs?queue=' + seed.queues.web);
  await page.waitForSelector('#jobs tbody tr');
  const r = await api('POST', '/v1/jobs', { id: 'live-from-api', queue: seed.queues.web, type: 'email.send', args: { to: 'x' } });
  assert(r.status === 201, `enqueue: ${r.status}`);
  const t0 = Date.now();
  await page.waitForSelector('#jobs tr[data-id="live-from-api"]', { timeout: 2000 });
  console.log(`   appeared after ${Date.now() - t0} ms`);
  await shoot('jobs');
});

await check('filters in the URL find the seeded job', async () => {
  await page.goto(base + `/ui/jobs?queue=${seed.queues.web}&type=report.build&state=failed`);
  await page.waitForSelector(`#jobs tr[data-id="${seed.ids.failed}"]`, { timeout: 3000 });
  const ids = await page.$$eval('#jobs tbody tr', (rows) => rows.map((r) => r.dataset.id));
  assert(ids.length === 1 && ids[0] === seed.ids.failed, `rows: ${ids}`);
  // The form applies its own filters into the URL.
  await page.fill('input[name="type"]', 'email.send');
  await page.selectOption('select[name="state"]', '');
  await page.click('form.filters button[type="submit"]');
  await page.waitForURL(/type=email\.send/);
  assert(!page.url().includes('state='), 'an empty filter stays out of the URL');
});

await check('text search finds the seeded job by its args', async () => {
  await page.goto(base + '/ui/jobs');
  await page.fill('input[name="text"]', seed.search.text);
  await page.click('form.filters button[type="submit"]');
  await page.waitForSelector(`#jobs tr[data-id="${seed.search.id}"]`, { timeout: 3000 });
  const ids = await page.$$eval('#jobs tbody tr', (rows) => rows.map((r) => r.dataset.id));
  assert(ids.length === 1, `rows: ${ids}`);
  assert(page.url().includes('text='), 'the search is in the URL');
});

await check('retry all matching requeues every matching job and progress reaches 100%', async () => {
  await page.goto(base + `/ui/jobs?queue=${seed.bulk.queue}&state=failed`);
  await page.waitForSelector('#jobs tbody tr');
  await page.click('#bulk button:has-text("Retry all matching")');
  await page.waitForSelector('#confirm[open]');
  const text = await page.textContent('#confirm-title');
  assert(text.includes(String(seed.bulk.count)), `the dialog names the count: ${text}`);
  await page.click('#confirm-yes');
  await page.waitForSelector('[data-bulk][data-state="done"]', { timeout: 10000 });
  assert((await page.textContent('[data-bulk] .pct')) === '100%', 'progress at 100%');
  await shoot('bulk');
  const c = (await api('GET', '/v1/stats')).body.queues[seed.bulk.queue].counts;
  assert((c.failed || 0) === 0 && c.queued === seed.bulk.count, `counts after: ${JSON.stringify(c)}`);
});

await check('the timeline lists every attempt', async () => {
  await page.goto(base + '/ui/jobs/' + seed.ids.retried);
  await page.waitForSelector('#timeline li');
  const items = await page.$$eval('#timeline li', (li) => li.map((x) => x.textContent));
  const failed = items.filter((t) => /attempt \d+ failed/.test(t));
  assert(failed.length === seed.attempts_failed, `failed attempts shown: ${failed.length} of ${seed.attempts_failed}: ${items}`);
  assert(items.some((t) => t.includes('enqueued')), 'enqueued shown');
  assert(items.join(' ').includes('boom-2'), 'the error message is shown');
  await shoot('job');
});

await check('why-not-running names the open breaker', async () => {
  await page.goto(base + '/ui/jobs/' + seed.ids.blocked);
  const why = await page.textContent('#why', { timeout: 3000 });
  assert(why.includes(seed.breaker_key) && /breaker/i.test(why), `why: ${why}`);
});

await check('an open confirmation dialog survives live updates', async () => {
  await page.goto(base + '/ui/jobs/' + seed.ids.failed);
  await page.waitForSelector('#actions');
  await page.click('#actions button:has-text("Delete")');
  await page.waitForSelector('#confirm[open]');
  const text = await page.textContent('#confirm-text');
  await api('POST', '/v1/jobs', { queue: seed.queues.web, type: 'email.send' }); // a live event
  await page.waitForTimeout(2500); // two ticks
  assert(await page.locator('#confirm[open]').count() === 1, 'the dialog closed by itself');
  assert(await page.textContent('#confirm-text') === text, 'the dialog was redrawn');
  await page.click('#confirm-no');
  assert((await api('GET', '/v1/jobs/' + seed.ids.failed)).status === 200, 'cancel deleted nothing');
});

await check('pausing a queue from the UI pauses it', async () => {
  await page.goto(base + '/ui/queues/' + seed.queues.web);
  await page.waitForSelector('#pause');
  assert((await page.textContent('#pause')).includes('Pause'), 'button says pause');
  // Counts by state x priority equal the API's.
  await page.waitForSelector('#by-priority');
  const bp = (await api('GET', '/v1/queues')).body.queues.find((x) => x.name === seed.queues.web).by_priority;
  for (const st of ['queued', 'running', 'pending']) {
    for (const pr of ['critical', 'high', 'normal', 'low', 'background']) {
      const shown = Number(await page.textContent(`#by-priority tr[data-state="${st}"] td[data-priority="${pr}"]`));
      assert(shown === bp[st][pr], `${st} x ${pr}: page ${shown}, API ${bp[st][pr]}`);
    }
  }
  assert(bp.queued.high + bp.queued.normal + bp.queued.low + bp.queued.background + bp.queued.critical > 0, 'some queued');
  await page.click('#pause');
  await page.waitForSelector('#pause:has-text("Resume")', { timeout: 3000 });
  const q = (await api('GET', '/v1/queues')).body.queues.find((x) => x.name === seed.queues.web);
  assert(q && q.paused, 'the API says the queue is paused');
  await shoot('queue');
  await page.click('#pause');
  await page.waitForSelector('#pause:has-text("Pause")', { timeout: 3000 });
});

await check('workers lists HTTP and Faktory workers; quiet is told to the process', async () => {
  await page.goto(base + '/ui/workers');
  await page.waitForSelector(`#workers tr[data-worker="${seed.workers.http}"]`);
  await page.waitForSelector(`#workers tr[data-worker="${seed.workers.faktory}"]`);
  const kind = await page.textContent(`#workers tr[data-worker="${seed.workers.faktory}"] td:nth-child(2)`);
  assert(kind === 'faktory', `kind ${kind}`);
  await shoot('workers');
  await page.click(`#workers tr[data-worker="${seed.workers.faktory}"] button:has-text("quiet")`);
  await page.waitForSelector(`#workers tr[data-worker="${seed.workers.faktory}"] .state.quiet`, { timeout: 4000 });
  const w = (await api('GET', '/v1/workers')).body.workers.find((x) => x.id === seed.workers.faktory);
  assert(w.state === 'quiet', `the API says ${w.state}`);
});

await check('breakers and limits show the tripped breaker and the limited key', async () => {
  await page.goto(base + '/ui/breakers');
  await page.waitForSelector(`#breakers tr[data-key="${seed.breaker_key}"]`);
  const st = await page.textContent(`#breakers tr[data-key="${seed.breaker_key}"] .state`);
  assert(st === 'open', `breaker state ${st}`);
  const log = await page.textContent('#breaker-log');
  assert(log.includes(seed.breaker_key) && log.includes('open'), `the change history: ${log}`);
  const limits = await page.textContent('#limits');
  assert(limits.includes(seed.limited_key), 'limited key listed');
  await shoot('breakers');
});

await check('settings: forced dark theme and local times', async () => {
  await page.goto(base + '/ui/');
  await page.selectOption('#theme', 'dark');
  assert(await page.evaluate(() => document.documentElement.dataset.theme) === 'dark', 'theme applied');
  await page.reload();
  assert(await page.evaluate(() => document.documentElement.dataset.theme) === 'dark', 'theme kept');
  await page.selectOption('#theme', '');
  await page.selectOption('#tz', 'local');
  await page.selectOption('#tz', 'utc');
});

await check('a reader key sees actions disabled and the server refuses them', async () => {
  const rc = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const rp = await rc.newPage();
  await signIn(rp, seed.keys.reader);
  await rp.goto(base + '/ui/jobs/' + seed.ids.failed);
  await rp.waitForSelector('#actions');
  for (const label of ['Retry', 'Delete']) {
    assert(await rp.locator(`#actions button:has-text("${label}")`).isDisabled(), `${label} is enabled for a reader`);
  }
  await rp.goto(base + '/ui/queues/' + seed.queues.web);
  await rp.waitForSelector('#pause');
  assert(await rp.locator('#pause').isDisabled(), 'pause is enabled for a reader');
  const status = await rp.evaluate(async (id) => (await fetch(`/v1/jobs/${id}/retry`,
    { method: 'POST', headers: { 'X-Jobq-Csrf': '1' } })).status, seed.ids.failed);
  assert(status === 403, `the server let a reader retry: ${status}`);
  const job = (await api('GET', '/v1/jobs/' + seed.ids.failed)).body;
  assert(job.state === 'failed', `the job changed: ${job.state}`);
  await rc.close();
});

await check('no console error and no request to another origin', async () => {
  assert(problems.length === 0, problems.join('\n'));
});

await browser.close();
process.exit(failures);
