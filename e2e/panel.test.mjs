// The CSR guidance panel in a real headless Chromium (Debian's; playwright-core never
// downloads a browser), against a running earshot server, with `earshot replay` streaming a
// recorded call into the session the panel started.
//
// Environment:
//   EARSHOT_URL          the server, e.g. http://127.0.0.1:8080
//   EARSHOT_ADMIN_TOKEN  an admin token of its tenant
//   EARSHOT_BIN          the earshot binary (for `earshot replay`)
//   EARSHOT_ARTIFACTS    where screenshots go (default e2e/artifacts)
//   CHROMIUM             the browser (default /usr/bin/chromium)
//
// The browser reaches the server through a TCP relay in this process, so the test can cut
// the panel's connections the way a network drop does (an abrupt close, no close frame) and
// check that the panel reconnects and resumes without losing or repeating anything.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');

function env(name, fallback) {
  const v = process.env[name] || fallback;
  if (!v) throw new Error(`${name} is not set (see the top of e2e/panel.test.mjs)`);
  return v;
}

const SERVER = env('EARSHOT_URL').replace(/\/+$/, '');
const TOKEN = env('EARSHOT_ADMIN_TOKEN');
const BIN = env('EARSHOT_BIN');
const ARTIFACTS = path.resolve(env('EARSHOT_ARTIFACTS', path.join(here, 'artifacts')));
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const TRANSCRIPT = path.join(repo, 'transcripts', 'hvac-booking-guarantee.json');
const SEGMENTS = JSON.parse(fs.readFileSync(TRANSCRIPT, 'utf8')).segments;

/** A TCP relay to the server whose connections can be cut, and kept refused for a while. */
async function relay(target) {
  const { hostname, port } = new URL(target);
  const open = new Set();
  let refuseUntil = 0;
  const server = net.createServer((client) => {
    if (Date.now() < refuseUntil) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {});
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Drops every connection at once (RST) and refuses new ones for `ms`. */
    cut(ms) {
      refuseUntil = Date.now() + ms;
      for (const s of open) s.resetAndDestroy();
    },
    close: () => new Promise((resolve) => {
      for (const s of open) s.destroy();
      server.close(resolve);
    }),
  };
}

/** The REST API with the admin token. */
async function api(method, p, body) {
  const r = await fetch(`${SERVER}${p}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Runs `earshot replay` into `callId`; answers a promise of { code, output }. */
function replay(callId) {
  const child = spawn(BIN, ['replay', TRANSCRIPT, '--server', SERVER, '--call', callId, '--speed', '4'], {
    env: { ...process.env, EARSHOT_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const done = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, output }));
  });
  return { child, done, get output() { return output; } };
}

/** `promise`, or a failure after `ms` (the timer does not outlive it). */
async function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(what())), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const testids = (page, id) => page.locator(`[data-testid="${id}"]`);

/** One step of the scenario: logged as it starts, named in its failure. Later steps need the
 * earlier ones, so the first failure ends the test. */
async function step(name, fn) {
  const started = Date.now();
  console.log(`# step: ${name}`);
  try {
    await fn();
  } catch (e) {
    e.message = `step "${name}" failed: ${e.message}`;
    throw e;
  }
  console.log(`# ok (${Date.now() - started} ms)`);
}

test('the guidance panel follows a replayed call live, through a dropped connection', { timeout: 240_000 }, async (t) => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const proxy = await relay(SERVER);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  // Script errors and Content-Security-Policy violations (both reach the console as errors).
  const problems = [];
  let networkDown = false;
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // While the relay refuses connections, failed requests are the point of the test.
    if (networkDown && /net::ERR_|WebSocket connection/.test(m.text())) return;
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  const noProblems = () => assert.deepEqual(problems.splice(0), [], 'no script errors and no Content-Security-Policy violations');
  let run = null;
  t.after(async () => {
    if (run) run.child.kill();
    await browser.close();
    await proxy.close();
  });
  const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: false });

  try {
    await step('a refused token says so; the admin token signs in', async () => {
      await page.goto(`${proxy.url}/`);
      await testids(page, 'token-input').fill('esk_0000000000000000000000000000000000000000');
      await testids(page, 'signin-submit').click();
      const error = testids(page, 'signin-error');
      await error.waitFor({ state: 'visible' });
      assert.match(await error.textContent(), /refused/i);
      await testids(page, 'token-input').fill(TOKEN);
      await testids(page, 'signin-submit').click();
      await testids(page, 'calls').waitFor();
      await page.waitForSelector('[data-testid="connection"][data-state="connected"]');
      assert.equal(await page.evaluate(() => sessionStorage.getItem('earshot.token')), TOKEN);
      problems.length = 0; // the refused token's 401 was the point
    });

    let callId;
    await step('New session starts a call and shows its id', async () => {
      await testids(page, 'agent-input').fill('agent-e2e');
      await testids(page, 'new-session').click();
      const id = testids(page, 'call-id');
      await id.waitFor();
      callId = (await id.textContent()).trim();
      assert.match(callId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.equal(new URL(page.url()).hash, `#/calls/${callId}`);
      assert.match(await testids(page, 'replay-command').textContent(), new RegExp(`--call ${callId}`));
      const state = await api('GET', `/api/v1/calls/${callId}`);
      assert.equal(state.state.status, 'live');
      assert.equal(state.state.info.agent, 'agent-e2e');
      // The checklist lists the ruleset's required items before any is done.
      await page.waitForSelector('[data-testid="checklist-item"][data-rule-id="confirm-service-address"][data-status="pending"]');
    });

    await step('earshot replay streams the call: lines arrive, the critical alert shows in red', async () => {
      run = replay(callId);
      await page.waitForSelector('[data-testid="transcript-line"]', { timeout: 15_000 });
      const alert = page.locator('[data-testid="alert"][data-rule-id="no-guarantee"]');
      await alert.waitFor({ timeout: 30_000 });
      assert.equal(await alert.getAttribute('data-severity'), 'critical');
      assert.match(await alert.locator('[data-testid="alert-message"]').textContent(), /guarantee/i);
      assert.ok((await alert.locator('[data-testid="alert-correction"]').textContent()).length > 20);
      // Red, large, and first among the alerts.
      const look = await alert.evaluate((el) => {
        const s = getComputedStyle(el);
        const msg = getComputedStyle(el.querySelector('[data-testid="alert-message"]'));
        return { bg: s.backgroundColor, size: parseFloat(msg.fontSize) };
      });
      const [r, g, b] = look.bg.match(/\d+/g).map(Number);
      assert.ok(r > 150 && g < 40 && b < 60, `a critical alert is red, not ${look.bg}`);
      assert.ok(look.size >= 20, `alert text is large (${look.size}px)`);
      const first = await page.locator('[data-testid="alerts"] [data-testid="alert"]').first().getAttribute('data-rule-id');
      assert.equal(first, 'no-guarantee');
      // The line that fired it (the third of the transcript) is there and flagged; the
      // replay is still going.
      const firing = SEGMENTS.findIndex((s) => /I guarantee/.test(s.text));
      await page.waitForFunction((i) => document.querySelectorAll('[data-testid="transcript-line"]')[i]?.classList.contains('flagged'), firing);
      assert.equal(run.child.exitCode, null, `replay still streaming (output: ${run.output})`);
      await shot('session-alert.png');
    });

    await step('a dropped connection shows reconnecting, then connected, and resumes', async () => {
      await page.evaluate(() => {
        const el = document.querySelector('[data-testid="connection"]');
        window.__connStates = [el.dataset.state];
        new MutationObserver(() => window.__connStates.push(el.dataset.state)).observe(el, { attributes: true, attributeFilter: ['data-state'] });
      });
      const before = Number(await page.evaluate(() => document.body.dataset.lastSeq));
      assert.equal(run.child.exitCode, null, 'the cut happens mid-replay');
      networkDown = true;
      proxy.cut(1500);
      await page.waitForSelector('[data-testid="connection"][data-state="reconnecting"]', { timeout: 5_000 });
      assert.match(await testids(page, 'connection').textContent(), /Reconnecting \(attempt \d+/);
      await page.waitForSelector('[data-testid="connection"][data-state="connected"]', { timeout: 30_000 });
      const states = await page.evaluate(() => window.__connStates);
      const r = states.indexOf('reconnecting');
      assert.ok(r > 0 && states.indexOf('connected', r) > r, `states seen: ${states.join(' → ')}`);
      // Events that were committed during the drop arrive after it.
      await page.waitForFunction((n) => Number(document.body.dataset.lastSeq) > n, before, { timeout: 30_000 });
      networkDown = false;
    });

    await step('Tab reaches Acknowledge and Enter acknowledges', async () => {
      await page.locator('h1').focus();
      let reached = false;
      for (let i = 0; i < 12 && !reached; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate(() => document.activeElement?.dataset.testid === 'alert-ack'
          && document.activeElement.closest('[data-testid="alert"]')?.dataset.ruleId === 'no-guarantee');
      }
      assert.ok(reached, 'Tab reaches the Acknowledge button of the critical alert');
      assert.ok(await page.evaluate(() => document.activeElement.matches(':focus-visible')), 'focus is visible');
      await page.keyboard.press('Enter');
      await page.waitForSelector('[data-testid="alert"][data-rule-id="no-guarantee"][data-acknowledged="true"]');
      const state = await api('GET', `/api/v1/calls/${callId}`);
      const acked = state.state.alerts.find((a) => a.rule.rule_id === 'no-guarantee');
      assert.ok(acked.acknowledged_by, 'the acknowledgement is in the log');
    });

    await step('after the replay, every segment is shown exactly once, then the summary', async () => {
      const result = await within(90_000, run.done, () => `replay did not finish in 90 s: ${run.output}`);
      assert.equal(result.code, 0, `earshot replay failed:\n${result.output}`);
      await page.locator('[data-testid="summary-body"]').waitFor({ timeout: 30_000 });
      const call = await api('GET', `/api/v1/calls/${callId}`);
      await page.waitForFunction((top) => Number(document.body.dataset.lastSeq) === top, call.top_seq);

      const lines = await page.$$eval('[data-testid="transcript-line"]', (els) =>
        els.map((e) => ({ seq: Number(e.dataset.seq), id: e.dataset.segmentId, speaker: e.dataset.speaker })));
      assert.equal(lines.length, SEGMENTS.length, 'one line per segment of the transcript');
      assert.deepEqual(lines.map((l) => l.speaker), SEGMENTS.map((s) => s.speaker), 'in order');
      assert.equal(new Set(lines.map((l) => l.id)).size, lines.length, 'no segment shown twice');
      assert.equal(new Set(lines.map((l) => l.seq)).size, lines.length, 'no seq shown twice');
      const logged = call.state.segments.filter((s) => s.is_final);
      assert.deepEqual(lines.map((l) => l.seq), logged.map((s) => s.seq), 'the lines are the log\'s segments');
      // Redacted values are chips: the phone number the customer reads out is [PHONE].
      const spoken = SEGMENTS.findIndex((s) => /four one five/.test(s.text));
      const chips = await page.$$eval('[data-testid="transcript-line"]', (els, i) =>
        [...els[i].querySelectorAll('[data-testid="pii"]')].map((e) => e.textContent), spoken);
      assert.deepEqual(chips, ['[PHONE]']);
      // The checklist matches the log.
      for (const [rule, entry] of Object.entries(call.state.checklist)) {
        assert.equal(
          await page.locator(`[data-testid="checklist-item"][data-rule-id="${rule}"]`).getAttribute('data-status'),
          entry.status,
          `checklist item ${rule}`,
        );
      }
      // Summary and disposition, as the log has them.
      const summary = await api('GET', `/api/v1/calls/${callId}/summary`);
      assert.equal((await testids(page, 'summary-reason').textContent()).trim(), summary.summary.summary.reason_for_call);
      const disposition = testids(page, 'disposition');
      assert.equal(await disposition.getAttribute('data-disposition'), summary.disposition.disposition);
      assert.match(await disposition.textContent(), /% confidence · offline/);
      assert.equal(await testids(page, 'call-status').textContent(), 'Ended');
      await shot('summary.png');
    });

    await step('the disposition can be overridden', async () => {
      await testids(page, 'disposition-select').selectOption('lead');
      await testids(page, 'disposition-note').fill('customer asked for a quote first');
      await testids(page, 'disposition-save').click();
      await page.waitForSelector('[data-testid="disposition"][data-disposition="lead"][data-overridden="true"]');
      assert.match(await testids(page, 'disposition').textContent(), /customer asked for a quote first/);
      const summary = await api('GET', `/api/v1/calls/${callId}/summary`);
      assert.equal(summary.disposition.disposition, 'lead');
      assert.ok(summary.disposition.overridden_by);
    });

    await step('in a narrow window nothing overflows sideways', async () => {
      await page.setViewportSize({ width: 420, height: 800 });
      await page.waitForTimeout(200);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page is ${overflow}px wider than the window`);
      assert.ok(await page.locator('[data-testid="transcript-line"] .who').first().isVisible(), 'speakers are named');
      assert.ok(await testids(page, 'signout').isVisible());
      await shot('session-narrow.png');
      await page.setViewportSize({ width: 1280, height: 800 });
    });

    await step('the supervisor view follows the live calls and their alerts', async () => {
      const other = await api('POST', '/api/v1/calls', { agent_id: 'agent-sup' });
      const say = (id, text, start) => api('POST', `/api/v1/calls/${other.call_id}/segments`, {
        segment_id: id, speaker: 'agent', text, start_ms: start, end_ms: start + 2000,
      });
      await say('s1', 'Thanks for calling, I guarantee we can fix it today.', 0);
      // The board's first rows come from the call index, which trails the log by a few
      // milliseconds (docs/protocol.md); wait until it has the alert.
      for (let i = 0; ; i++) {
        const { calls } = await api('GET', '/api/v1/calls?status=live&limit=200');
        if (calls.some((c) => c.call_id === other.call_id && c.alerts === 1)) break;
        assert.ok(i < 100, 'the call index lists the new call within 5 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      await page.goto(`${proxy.url}/#/supervisor`);
      const row = page.locator(`[data-testid="supervisor-row"][data-call-id="${other.call_id}"]`);
      await row.waitFor();
      await page.waitForFunction((id) => document.querySelector(`[data-testid="supervisor-row"][data-call-id="${id}"] [data-testid="supervisor-alerts"]`)?.textContent === '1', other.call_id);
      // The first call has ended: it is not on the board.
      assert.equal(await page.locator(`[data-testid="supervisor-row"][data-call-id="${callId}"]`).count(), 0);
      // A new alert on the call updates its row live, with no reload.
      await say('s2', 'And it is completely safe, I promise.', 45_000);
      await page.waitForFunction((id) => document.querySelector(`[data-testid="supervisor-row"][data-call-id="${id}"] [data-testid="supervisor-alerts"]`)?.textContent === '2', other.call_id);
      await shot('supervisor.png');
      // The row links to the session page.
      await row.locator('a').click();
      await page.waitForSelector(`[data-testid="session"][data-call-id="${other.call_id}"]`);
      await page.goto(`${proxy.url}/#/supervisor`);
      await row.waitFor();
      await api('POST', `/api/v1/calls/${other.call_id}/end`, {});
      await row.waitFor({ state: 'detached' });
    });

    noProblems();

    await step('a call that is not there says so', async () => {
      await page.goto(`${proxy.url}/#/calls/00000000-0000-4000-8000-000000000000`);
      await page.getByText('There is no such call in your tenant.').waitFor();
      problems.length = 0; // its 404
    });

    await step('sign out forgets the token', async () => {
      await testids(page, 'signout').click();
      await testids(page, 'signin').waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem('earshot.token')), null);
    });

    noProblems();
  } catch (e) {
    await shot('failure.png').catch(() => {});
    throw e;
  }
});
