// The hosted widgets, the SDK and /demo in a real headless Chromium (Debian's
// `chromium`, driven by playwright-core), against the real binary:
//
//   node tests/browser/widgets.mjs target/debug/pinvault
//
// Starts `pinvault serve --dev` on a free port over a fresh data directory, sets
// things up over the HTTP API and the command line, and checks what a
// cardholder sees and what the app and the host page receive. Screenshots of
// each state go to target/browser-artifacts/. Prints "browser: N passed, M failed".
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = resolve(process.argv[2] || 'target/debug/pinvault');
const CHROMIUM = process.env.PINVAULT_TEST_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = resolve('target/browser-artifacts');
mkdirSync(ARTIFACTS, { recursive: true });
const only = process.env.PINVAULT_BROWSER_ONLY || '';

let passed = 0;
let failed = 0;
async function check(name, fn) {
  if (only && !name.includes(only)) return;
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n     ${String(e && e.stack || e).split('\n').slice(0, 6).join('\n     ')}`);
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(message);
}
function eq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const b = JSON.stringify(expected);
  if (a !== b) throw new Error(`${what}: expected ${b}, got ${a}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the server ----
const dataDir = mkdtempSync(join(tmpdir(), 'pinvault-browser-'));
let serverLog = '';
const server = spawn(BIN, ['serve', '--dev', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
  env: { ...process.env, PINVAULT_LOG: 'debug' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
server.stderr.on('data', (d) => { serverLog += d; });
const { base, key } = await new Promise((ok, fail) => {
  let out = '';
  const timer = setTimeout(() => fail(new Error('server did not start:\n' + serverLog)), 30000);
  server.stdout.on('data', (d) => {
    out += d;
    const k = out.match(/(pv_test_[A-Za-z0-9_-]+)/);
    const b = out.match(/export PV=(\S+)/);
    if (k && b && out.includes('/demo')) {
      clearTimeout(timer);
      ok({ base: b[1], key: k[1] });
    }
  });
  server.on('exit', (c) => fail(new Error(`server exited (${c}):\n${serverLog}`)));
});
const tokens = [];

async function api(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}
async function program(settings) {
  const r = await api('PATCH', '/v1/program', settings);
  eq(r.status, 200, 'PATCH /v1/program ' + JSON.stringify(r.body));
  return r.body;
}
async function newCard() {
  const r = await api('POST', '/v1/cards', { pan: '4111111111111111' });
  eq(r.status, 201, 'POST /v1/cards');
  return r.body.id;
}
async function token(card, type) {
  const body = type === 'reveal_pin'
    ? { type, cardholder_verification_method: 'BIOMETRIC_FACE' } : { type };
  const r = await api('POST', `/v1/cards/${card}/control-tokens`, body);
  eq(r.status, 201, 'POST control-tokens ' + JSON.stringify(r.body));
  tokens.push(r.body.token);
  return r.body.token;
}
async function setPinByApi(card, pin) {
  const t = await token(card, 'set_pin');
  const r = await api('PUT', `/v1/cards/${card}/pin`, { control_token: t, pin });
  eq(r.status, 204, 'PUT pin');
}
async function sandboxVerify(card, pin) {
  const r = await api('POST', `/v1/test/cards/${card}/pin/verify`, { pin });
  eq(r.status, 200, 'sandbox verify');
  return r.body.result;
}
const programId = (await api('GET', '/v1/program')).body.id;
function cli(...args) {
  return execFileSync(BIN, [...args, '--data-dir', dataDir], { encoding: 'utf8' });
}

// ---- host pages on other origins (the program's app) ----
function hostServer() {
  return new Promise((ok) => {
    const s = http.createServer((req, res) => {
      const url = new URL(req.url, 'http://x');
      const widget = url.searchParams.get('widget') || 'pin-set';
      const t = url.searchParams.get('token') || '';
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><html><head><meta charset="utf-8"><title>host</title></head><body>
<h1>A program's app</h1><div id="w" style="max-width:420px"></div>
<script src="${base}/sdk/pinvault.js"></script>
<script>
  window.events = []; window.allMessages = [];
  window.addEventListener('message', (e) => window.allMessages.push({ origin: e.origin, data: e.data }));
  if (${JSON.stringify(url.pathname)} === '/mount') {
    window.handle = Pinvault.mount(document.getElementById('w'), {
      widget: ${JSON.stringify(widget)}, token: ${JSON.stringify(t)},
      onEvent: (e) => window.events.push(e),
      appearance: { colorAccent: '#aa0055', radius: '2px', fontFamily: 'DejaVu Serif, serif' },
    });
  }
</script></body></html>`);
    });
    s.listen(0, '127.0.0.1', () => ok({ server: s, origin: `http://127.0.0.1:${s.address().port}` }));
  });
}
const allowedHost = await hostServer();
const otherHost = await hostServer();

await program({
  widget_allowed_origins: [base, allowedHost.origin],
  reveal_display_s: 30,
});
// Records what the reveal widget shows, as it happens, whatever the machine's speed.
const WATCH_REVEAL = () => {
  window.__seen = { pins: [], countdowns: [] };
  new MutationObserver(() => {
    const pin = document.querySelector('[data-pinvault="pin"]');
    if (pin && !window.__seen.pins.includes(pin.textContent)) window.__seen.pins.push(pin.textContent);
    const c = document.querySelector('[data-pinvault="countdown"]');
    if (c && c.textContent && !window.__seen.countdowns.includes(c.textContent)) window.__seen.countdowns.push(c.textContent);
  }).observe(document, { subtree: true, childList: true, characterData: true });
};

// ---- the browser ----
const profile = mkdtempSync(join(tmpdir(), 'pinvault-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 420, height: 640 },
});
context.setDefaultTimeout(15000);

const BRIDGES = () => {
  window.__android = [];
  window.__ios = [];
  window.Android = { postMessage: (c) => window.__android.push(c) };
  window.webkit = { messageHandlers: { IOS: { postMessage: (c) => window.__ios.push(c) } } };
};
async function open(path, { bridges = false, width = 420, dark = false } = {}) {
  const page = await context.newPage();
  await page.setViewportSize({ width, height: 640 });
  await page.emulateMedia({ colorScheme: dark ? 'dark' : 'light' });
  if (bridges) await page.addInitScript(BRIDGES);
  const res = await page.goto(base + path);
  return { page, res };
}
const status = (page) => page.locator('[data-pinvault="status"]');
async function waitStatus(page, code) {
  await page.waitForSelector(`[data-pinvault="status"][data-status="${code}"]`);
}
async function shot(page, name) {
  const path = join(ARTIFACTS, `${name}.png`);
  // The widget itself where there is one (the page around it is blank).
  const widget = page.locator('main.pv');
  if (await widget.count()) await widget.screenshot({ path });
  else await page.screenshot({ path, fullPage: true });
}
async function typePins(page, pin, confirmation) {
  await page.fill('input[name="pin"]', pin);
  await page.fill('input[name="pin_confirmation"]', confirmation ?? pin);
  await page.click('button[type="submit"]');
}

try {
  await check('widget responses carry the security headers', async () => {
    const card = await newCard();
    const t = await token(card, 'set_pin');
    for (const path of [`/widgets/pin-set?token=${t}`, '/widgets/pin-set?token=pct_unknown']) {
      const r = await fetch(base + path);
      eq(r.headers.get('cache-control'), 'no-store', 'Cache-Control');
      eq(r.headers.get('referrer-policy'), 'no-referrer', 'Referrer-Policy');
      eq(r.headers.get('x-content-type-options'), 'nosniff', 'X-Content-Type-Options');
      const csp = r.headers.get('content-security-policy') || '';
      for (const d of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
        "form-action 'self'", "base-uri 'none'"]) assert(csp.includes(d), `CSP lacks ${d}: ${csp}`);
      const ancestors = csp.split(';').map((s) => s.trim()).find((s) => s.startsWith('frame-ancestors'));
      eq(ancestors, path.includes('unknown') ? "frame-ancestors 'none'"
        : `frame-ancestors ${base} ${allowedHost.origin}`, 'frame-ancestors');
    }
    const sdk = await fetch(base + '/sdk/pinvault.js');
    eq(sdk.status, 200, 'SDK');
    assert((sdk.headers.get('content-type') || '').startsWith('text/javascript'), 'SDK content type');
  });

  await check('set through the widget, then the PIN verifies through the API (bridges get 0)', async () => {
    const card = await newCard();
    const t = await token(card, 'set_pin');
    const { page, res } = await open(`/widgets/pin-set?token=${t}`, { bridges: true });
    eq(res.status(), 200, 'page status');
    await shot(page, 'pin-set-form');
    await typePins(page, '2580');
    await waitStatus(page, 0);
    await shot(page, 'pin-set-success');
    eq(await page.evaluate(() => [window.__android, window.__ios]), [[0], [0]], 'bridges');
    eq(await sandboxVerify(card, '2580'), 'match', 'sandbox verify of the new PIN');
    eq(await sandboxVerify(card, '0000'), 'mismatch', 'sandbox verify of the old PIN');
    const pinStatus = await api('GET', `/v1/cards/${card}/pin/status`);
    eq(pinStatus.body.set_by, 'cardholder', 'set_by');
    await page.close();
  });

  await check('mismatch shows -21 and malformed -22 (checked in the page; bridges get them)', async () => {
    const card = await newCard();
    const t = await token(card, 'set_pin');
    const { page } = await open(`/widgets/pin-set?token=${t}`, { bridges: true });
    await typePins(page, '4826', '4827');
    await waitStatus(page, -21);
    await shot(page, 'pin-set-mismatch');
    await typePins(page, '48a6', '48a6');
    await waitStatus(page, -22);
    await typePins(page, '123', '123');
    await waitStatus(page, -22);
    eq(await page.evaluate(() => [window.__android, window.__ios]), [[-21, -22, -22], [-21, -22, -22]], 'bridges');
    // Nothing reached the server: the token still has all its attempts.
    await typePins(page, '4826');
    await waitStatus(page, 0);
    await page.close();
  });

  await check('weak PIN shows -20 (the server\'s policy), then a good one succeeds', async () => {
    const card = await newCard();
    const t = await token(card, 'set_pin');
    const { page } = await open(`/widgets/pin-set?token=${t}`, { bridges: true });
    await typePins(page, '1234');
    await waitStatus(page, -20);
    await shot(page, 'pin-set-weak');
    eq(await page.inputValue('input[name="pin"]'), '', 'inputs cleared');
    await typePins(page, '9731');
    await waitStatus(page, 0);
    eq(await page.evaluate(() => window.__android), [-20, 0], 'Android bridge');
    eq(await sandboxVerify(card, '9731'), 'match', 'sandbox verify');
    await page.close();
  });

  await check('reveal shows the PIN set through the API, counts down, then clears it', async () => {
    const card = await newCard();
    await setPinByApi(card, '7391');
    const t = await token(card, 'reveal_pin');
    // Shown for 2 s: the page has the setting when it is rendered.
    await program({ reveal_display_s: 2 });
    const page = await context.newPage();
    await page.addInitScript(BRIDGES);
    await page.addInitScript(WATCH_REVEAL);
    let res;
    try {
      res = await page.goto(`${base}/widgets/pin-reveal?token=${t}`);
    } finally {
      await program({ reveal_display_s: 30 });
    }
    eq(res.status(), 200, 'page status');
    await waitStatus(page, 0);
    eq(await page.evaluate(() => [window.__android, window.__ios]), [[0], [0]], 'bridges');
    // It goes by itself (the wait's limit is generous, not a timing check).
    await page.waitForSelector('[data-pinvault="pin"]', { state: 'detached', timeout: 30000 });
    await page.waitForFunction(() => document.querySelector('[data-pinvault="status"]').textContent.includes('hidden'));
    const seen = await page.evaluate(() => window.__seen);
    eq(seen.pins, ['7391'], 'the PIN shown');
    assert(seen.countdowns.length >= 1 && seen.countdowns.every((c) => /^Hidden in [12] s$/.test(c)), `countdown ${seen.countdowns}`);
    const html = await page.content();
    assert(!html.includes('7391'), 'the PIN is still in the DOM');
    assert(!(await page.evaluate(() => document.body.innerText.includes('7391'))), 'the PIN is still shown');
    await shot(page, 'pin-reveal-hidden');
    // The token is spent: opening it again shows -10.
    const again = await open(`/widgets/pin-reveal?token=${t}`);
    eq(again.res.status(), 403, 'used token page status');
    await waitStatus(again.page, -10);
    await again.page.close();
    await page.close();
  });

  await check('expired, used, superseded and exhausted tokens show -10, -10, -11, -12 at once', async () => {
    const card = await newCard();
    // Expired: a 1-second token, then wait past it.
    await program({ set_token_ttl_s: 1 });
    const expired = await token(card, 'set_pin');
    await program({ set_token_ttl_s: 300 });
    await sleep(2100);
    let { page } = await open(`/widgets/pin-set?token=${expired}`, { bridges: true });
    await waitStatus(page, -10);
    assert(await page.locator('button[type="submit"]').isDisabled(), 'the form is closed');
    eq(await page.evaluate(() => [window.__android, window.__ios]), [[-10], [-10]], 'bridges');
    await shot(page, 'pin-set-expired');
    await page.close();
    // Superseded: a newer token of the same type.
    const older = await token(card, 'set_pin');
    const newer = await token(card, 'set_pin');
    ({ page } = await open(`/widgets/pin-set?token=${older}`, { bridges: true }));
    await waitStatus(page, -11);
    eq(await page.evaluate(() => window.__ios), [-11], 'iOS bridge');
    await page.close();
    // Used.
    const used = await api('PUT', `/v1/cards/${card}/pin`, { control_token: newer, pin: '5820' });
    eq(used.status, 204, 'PUT pin');
    ({ page } = await open(`/widgets/pin-set?token=${newer}`));
    await waitStatus(page, -10);
    await page.close();
    // Exhausted: one attempt, spent on a weak PIN.
    await program({ set_token_attempts: 1 });
    const one = await token(card, 'set_pin');
    await program({ set_token_attempts: 5 });
    const weak = await api('PUT', `/v1/cards/${card}/pin`, { control_token: one, pin: '1111' });
    eq(weak.body.code, 'weak_pin', 'weak PIN by API');
    ({ page } = await open(`/widgets/pin-set?token=${one}`, { bridges: true }));
    await waitStatus(page, -12);
    eq(await page.evaluate(() => window.__android), [-12], 'Android bridge');
    await shot(page, 'pin-set-exhausted');
    await page.close();
    // Unknown.
    ({ page } = await open('/widgets/pin-reveal?token=pct_AAAAAAAAAAAAAAAAAAAAAA'));
    await waitStatus(page, -10);
    await page.close();
  });

  await check('the set widget opened without a token shows -1 (an HTML page, 400; bridges get -1)', async () => {
    // Spidr's code for a form opened without what it needs (COMPAT.md): the page
    // still renders, so a WebView's bridge hears why.
    const { page, res } = await open('/widgets/pin-set', { bridges: true });
    eq(res.status(), 400, 'HTTP status');
    const type = res.headers()['content-type'] || '';
    assert(type.startsWith('text/html'), `an HTML page, not ${type}`);
    await waitStatus(page, -1);
    eq(await page.evaluate(() => [window.__android, window.__ios]), [[-1], [-1]], 'bridges');
    await page.close();
  });

  await check('the set widget spends its last attempt and then shows -12', async () => {
    const card = await newCard();
    await program({ set_token_attempts: 2 });
    const t = await token(card, 'set_pin');
    await program({ set_token_attempts: 5 });
    const { page } = await open(`/widgets/pin-set?token=${t}`, { bridges: true });
    // Each answer arrives before the next try (the second -20 looks like the first:
    // wait for its report, not for the status, or the third try races the second).
    await typePins(page, '1111');
    await page.waitForFunction(() => window.__android.length === 1);
    await waitStatus(page, -20);
    await typePins(page, '2222');
    await page.waitForFunction(() => window.__android.length === 2);
    await waitStatus(page, -20);
    await typePins(page, '8642');
    await waitStatus(page, -12);
    assert(await page.locator('input[name="pin"]').isDisabled(), 'the form is closed');
    eq(await page.evaluate(() => window.__android), [-20, -20, -12], 'Android bridge');
    await page.close();
  });

  await check('reveal disabled by the operator shows -30', async () => {
    const card = await newCard();
    const t = await token(card, 'reveal_pin');
    cli('programs', 'update', programId, '--set', 'reveal_enabled=false');
    try {
      const { page } = await open(`/widgets/pin-reveal?token=${t}`, { bridges: true });
      await waitStatus(page, -30);
      eq(await page.evaluate(() => window.__ios), [-30], 'iOS bridge');
      await page.close();
    } finally {
      cli('programs', 'update', programId, '--set', 'reveal_enabled=true');
    }
  });

  await check('the SDK frames the widget for an allowed origin by POST, applies the appearance and passes its events', async () => {
    const card = await newCard();
    const t = await token(card, 'set_pin');
    const page = await context.newPage();
    const requested = [];
    page.on('request', (r) => requested.push(r.url()));
    await page.goto(`${allowedHost.origin}/mount?widget=pin-set&token=${t}`);
    const frame = page.frameLocator('iframe[data-pinvault-frame="pin-set"]');
    await frame.locator('input[name="pin"]').waitFor();
    assert(requested.some((u) => u === `${base}/widgets/pin-set`), 'the widget was loaded by POST');
    assert(!requested.some((u) => u.startsWith(base) && u.includes(t)), 'the token appeared in a URL to pinvault');
    const iframe = await (await page.$('iframe')).contentFrame();
    eq(await iframe.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--pv-color-accent').trim()),
      '#aa0055', 'appearance colour');
    eq(await iframe.evaluate(() => getComputedStyle(document.querySelector('button[type="submit"]')).borderRadius),
      '2px', 'appearance radius');
    // A message forged by the host page itself is not the widget's.
    await page.evaluate(() => window.postMessage({ source: 'pinvault', widget: 'pin-set', status: 0, event: 'pin_set' }, '*'));
    await frame.locator('input[name="pin"]').fill('3691');
    await frame.locator('input[name="pin_confirmation"]').fill('3692');
    await frame.locator('button[type="submit"]').click();
    await frame.locator('[data-pinvault="status"][data-status="-21"]').waitFor();
    await frame.locator('input[name="pin"]').fill('3691');
    await frame.locator('input[name="pin_confirmation"]').fill('3691');
    await frame.locator('button[type="submit"]').click();
    await frame.locator('[data-pinvault="status"][data-status="0"]').waitFor();
    await page.waitForFunction(() => window.events.some((e) => e.event === 'pin_set'));
    const events = await page.evaluate(() => window.events.filter((e) => e.event !== 'resize'));
    eq(events, [
      { widget: 'pin-set', status: null, event: 'ready' },
      { widget: 'pin-set', status: -21, event: 'error' },
      { widget: 'pin-set', status: 0, event: 'pin_set' },
    ], 'onEvent');
    const fromWidget = await page.evaluate(() => window.allMessages.filter((m) => m.data && m.data.source === 'pinvault'));
    // The widget's own messages came from pinvault; the one forged by the host page was not passed on.
    assert(fromWidget.filter((m) => m.origin === base).length >= 3, 'messages from the widget');
    assert(fromWidget.some((m) => m.origin === allowedHost.origin), 'the forged message was posted');
    await shot(page, 'sdk-host-page');
    eq(await sandboxVerify(card, '3691'), 'match', 'sandbox verify');
    await page.evaluate(() => window.handle.unmount());
    eq(await page.locator('iframe').count(), 0, 'unmount removes the frame');
    await page.close();
  });

  await check('a host that is not allowed cannot frame the widget nor receive its messages', async () => {
    const card = await newCard();
    const t = await token(card, 'set_pin');
    const page = await context.newPage();
    await page.goto(`${otherHost.origin}/mount?widget=pin-set&token=${t}`);
    await page.waitForSelector('iframe');
    await sleep(1500);
    eq(await page.evaluate(() => window.events), [], 'no events');
    const iframe = await (await page.$('iframe')).contentFrame();
    eq(await iframe.locator('input[name="pin"]').count(), 0, 'the widget must not render in the frame');
    // A popup (frame-ancestors does not apply) that claims an allowed origin:
    // the widget posts only to that origin, so the real opener gets nothing.
    const t2 = await token(card, 'set_pin');
    const [popup] = await Promise.all([
      page.waitForEvent('popup'),
      page.evaluate(([b, tok, claimed]) => window.open(`${b}/widgets/pin-set?token=${tok}&parent_origin=${encodeURIComponent(claimed)}`),
        [base, t2, allowedHost.origin]),
    ]);
    await popup.waitForSelector('input[name="pin"]');
    await popup.fill('input[name="pin"]', '1593');
    await popup.fill('input[name="pin_confirmation"]', '1593');
    await popup.click('button[type="submit"]');
    await waitStatus(popup, 0);
    await sleep(500);
    eq(await page.evaluate(() => window.allMessages.filter((m) => m.data && m.data.source === 'pinvault')), [],
      'messages reached a host that is not allowed');
    await popup.close();
    await page.close();
  });

  await check('in a popup opened by an allowed host, the widget reports to its opener', async () => {
    const card = await newCard();
    await setPinByApi(card, '8024');
    const t = await token(card, 'reveal_pin');
    const page = await context.newPage();
    await page.goto(`${allowedHost.origin}/host`);
    const [popup] = await Promise.all([
      page.waitForEvent('popup'),
      page.evaluate(([b, tok, me]) => window.open(`${b}/widgets/pin-reveal?token=${tok}&parent_origin=${encodeURIComponent(me)}`),
        [base, t, allowedHost.origin]),
    ]);
    eq(await popup.locator('[data-pinvault="pin"]').textContent(), '8024', 'revealed PIN');
    await page.waitForFunction(() => window.allMessages.some((m) => m.data && m.data.event === 'pin_revealed'));
    const m = await page.evaluate(() => window.allMessages.find((x) => x.data.event === 'pin_revealed'));
    eq(m, { origin: base, data: { source: 'pinvault', widget: 'pin-reveal', status: 0, event: 'pin_revealed' } }, 'message');
    await popup.close();
    await page.close();
  });

  await check('320 px wide, keyboard and screen reader: nothing overflows, labels, focus order, live region', async () => {
    const card = await newCard();
    const t = await token(card, 'set_pin');
    const { page } = await open(`/widgets/pin-set?token=${t}`, { width: 320 });
    eq(await page.evaluate(() => document.documentElement.scrollWidth <= 320), true, 'no horizontal overflow');
    const labels = await page.evaluate(() => [...document.querySelectorAll('input')].map((i) => i.labels.length > 0));
    eq(labels, [true, true, true], 'every input has a label');
    const live = await page.evaluate(() => {
      const s = document.querySelector('[data-pinvault="status"]');
      return [s.getAttribute('role'), s.getAttribute('aria-live')];
    });
    eq(live, ['status', 'polite'], 'live region');
    const order = [];
    for (let i = 0; i < 4; i++) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate(() => document.activeElement.getAttribute('name') || document.activeElement.getAttribute('type')));
    }
    eq(order, ['pin', 'pin_confirmation', 'checkbox', 'submit'], 'focus order');
    const modes = await page.evaluate(() => [...document.querySelectorAll('input[name^="pin"]')]
      .map((i) => [i.inputMode, i.autocomplete, i.type]));
    eq(modes, [['numeric', 'one-time-code', 'password'], ['numeric', 'one-time-code', 'password']], 'input modes');
    await page.fill('input[name="pin"]', '8264');
    await page.check('[data-pinvault="show-digits"]');
    eq(await page.getAttribute('input[name="pin"]', 'type'), 'text', 'show digits');
    await shot(page, 'pin-set-320px');
    await page.close();
    const card2 = await newCard();
    await setPinByApi(card2, '6208');
    const r = await open(`/widgets/pin-reveal?token=${await token(card2, 'reveal_pin')}`, { width: 320 });
    await r.page.locator('[data-pinvault="pin"]').waitFor();
    eq(await r.page.evaluate(() => document.documentElement.scrollWidth <= 320), true, 'no horizontal overflow (reveal)');
    eq(await r.page.locator('.pv-sr-only').textContent(), 'Your PIN is 6 2 0 8', 'spoken digits');
    eq(await r.page.locator('[data-pinvault="pin"]').textContent(), '6208', 'revealed PIN');
    assert(/^Hidden in \d+ s$/.test(await r.page.locator('[data-pinvault="countdown"]').textContent()), 'countdown');
    await r.page.setViewportSize({ width: 420, height: 640 });
    await shot(r.page, 'pin-reveal-shown');
    await r.page.setViewportSize({ width: 320, height: 640 });
    await shot(r.page, 'pin-reveal-320px');
    await r.page.close();
  });

  await check('dark mode follows the device', async () => {
    const card = await newCard();
    await setPinByApi(card, '4062');
    const { page } = await open(`/widgets/pin-reveal?token=${await token(card, 'reveal_pin')}`, { dark: true });
    await page.locator('[data-pinvault="pin"]').waitFor();
    eq(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(22, 24, 28)', 'dark background');
    await shot(page, 'pin-reveal-dark');
    await page.close();
    const light = await open(`/widgets/pin-set?token=${await token(card, 'set_pin')}`);
    eq(await light.page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(255, 255, 255)', 'light background');
    await light.page.close();
    const dark = await open(`/widgets/pin-set?token=${await token(card, 'set_pin')}`, { dark: true });
    await typePins(dark.page, '1234');
    await waitStatus(dark.page, -20);
    await shot(dark.page, 'pin-set-dark-weak');
    await dark.page.close();
  });

  await check('staged mode: the widget stages (0, pin_staged), the program commits, then the PIN verifies', async () => {
    const card = await newCard();
    await program({ pin_set_mode: 'staged' });
    try {
      const t = await token(card, 'set_pin');
      const { page } = await open(`/widgets/pin-set?token=${t}`, { bridges: true });
      await typePins(page, '7046');
      await waitStatus(page, 0);
      assert((await status(page).textContent()).includes('saved'), 'the staged message');
      eq(await page.evaluate(() => [window.__android, window.__ios]), [[0], [0]], 'bridges');
      await shot(page, 'pin-set-staged');
      await page.close();
      eq(await sandboxVerify(card, '0000'), 'match', 'the old PIN until the commit');
      const st = await api('GET', `/v1/cards/${card}/pin/status`);
      eq(st.body.staged, true, 'staged');
      const commit = await api('POST', `/v1/cards/${card}/pin/commit`);
      eq(commit.status, 204, 'commit');
      eq(await sandboxVerify(card, '7046'), 'match', 'the new PIN after the commit');
    } finally {
      await program({ pin_set_mode: 'direct' });
    }
  });

  await check('/demo: create a card, set its PIN in the set widget, see it in the reveal widget, verify it, watch the events', async () => {
    const page = await context.newPage();
    await page.setViewportSize({ width: 900, height: 900 });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto(base + '/demo');
    await page.click('#create-card');
    await page.waitForSelector('[data-demo="card"][data-card-id]');
    const pinStatus = () => page.evaluate(() => ({
      status: document.getElementById('pin-state').getAttribute('data-status'),
      tries: document.getElementById('pin-tries').getAttribute('data-remaining-tries'),
      setBy: document.getElementById('pin-origin').getAttribute('data-set-by'),
      origin: document.getElementById('pin-origin').textContent,
      unblock: !document.getElementById('unblock').disabled,
    }));
    let st = await pinStatus();
    eq([st.status, st.tries, st.setBy, st.unblock], ['unblocked', '3', 'random', false], 'PIN status of a new card');
    assert(st.origin.includes('0000'), `a new test-mode card's first PIN is 0000: ${st.origin}`);
    await page.click('#open-set');
    const set = page.frameLocator('#set-widget iframe');
    await set.locator('input[name="pin"]').fill('4826');
    await set.locator('input[name="pin_confirmation"]').fill('4826');
    await set.locator('button[type="submit"]').click();
    await set.locator('[data-pinvault="status"][data-status="0"]').waitFor();
    await page.waitForFunction(() => document.getElementById('messages').textContent.includes('pin-set: pin_set (status 0, success)'));
    const messages = await page.locator('#messages').textContent();
    assert(messages.includes('pin-set: ready (no status yet)'), `ready named: ${messages}`);
    assert(!messages.includes('null'), `a widget message says null: ${messages}`);
    await page.waitForSelector('#pin-origin[data-set-by="cardholder"]');
    st = await pinStatus();
    assert(!st.origin.includes('0000'), `the card line still says 0000 after a set: ${st.origin}`);
    await page.click('#open-reveal');
    const reveal = page.frameLocator('#reveal-widget iframe');
    eq(await reveal.locator('[data-pinvault="pin"]').textContent(), '4826', 'revealed PIN');
    await page.fill('#verify-pin', '4826');
    await page.click('#verify');
    await page.waitForSelector('[data-demo="verify-result"][data-result="match"]');
    await page.waitForSelector('#events li[data-type="pin.revealed"]');
    const types = await page.evaluate(() => [...document.querySelectorAll('#events li')].map((l) => l.getAttribute('data-type')));
    for (const t of ['card.created', 'pin.token_created', 'pin.changed', 'pin.revealed']) {
      assert(types.includes(t), `event ${t} not shown: ${types}`);
    }
    await shot(page, 'demo');
    // Wrong PINs at the terminal: the status follows each one, then the PIN is blocked.
    for (const left of ['2', '1', '0']) {
      await page.fill('#verify-pin', '1357');
      await page.click('#verify');
      await page.waitForSelector(`#pin-tries[data-remaining-tries="${left}"]`);
    }
    await page.waitForSelector('#pin-state[data-status="blocked"]');
    const now = await page.locator('[data-demo="now-s4"]').textContent();
    assert(now.includes('After this step: PIN blocked, 0 tries left'), `the status under the terminal step: ${now}`);
    st = await pinStatus();
    eq([st.status, st.tries, st.unblock], ['blocked', '0', true], 'PIN status once blocked');
    await page.fill('#verify-pin', '4826');
    await page.click('#verify');
    await page.waitForSelector('[data-demo="verify-result"][data-result="blocked"]');
    await page.waitForSelector('#events li[data-type="pin.blocked"]');
    await shot(page, 'demo-blocked');
    // The support desk's unblock, through the demo's back end.
    await page.click('#unblock');
    await page.waitForSelector('[data-demo="unblock-result"][data-result="unblocked"]');
    await page.waitForSelector('#pin-state[data-status="unblocked"]');
    st = await pinStatus();
    eq([st.status, st.tries, st.setBy, st.unblock], ['unblocked', '3', 'cardholder', false], 'PIN status after the unblock');
    await page.waitForFunction(() => document.querySelector('[data-demo="now-s5"]').textContent.includes('After this step: PIN unblocked, 3 tries left'));
    // Each step keeps the status it left: the card's first, the set's, the terminal's.
    const after = await page.evaluate(() => ['s1', 's2', 's4'].map((s) => document.querySelector(`[data-demo="now-${s}"]`).textContent));
    assert(after[0].includes('PIN unblocked, 3 tries left, set by random'), `under step 1: ${after[0]}`);
    assert(after[1].includes('PIN unblocked, 3 tries left, set by cardholder'), `under step 2: ${after[1]}`);
    assert(after[2].includes('PIN blocked, 0 tries left'), `under step 4: ${after[2]}`);
    await page.waitForSelector('#events li[data-type="pin.unblocked"]');
    const cardId = await page.getAttribute('[data-demo="card"]', 'data-card-id');
    eq((await api('GET', `/v1/cards/${cardId}/pin/status`)).body.status, 'unblocked', 'the API agrees');
    await page.fill('#verify-pin', '4826');
    await page.click('#verify');
    await page.waitForSelector('[data-demo="verify-result"][data-result="match"]');
    // The page on the widgets' own stylesheet: their font, and dark mode with the device.
    const style = () => page.evaluate(() => {
      const b = getComputedStyle(document.body);
      return { font: b.fontFamily, background: b.backgroundColor, color: b.color };
    });
    const light = await style();
    const widgetFont = await set.locator('body').evaluate((b) => getComputedStyle(b).fontFamily);
    eq(light.font, widgetFont, 'the page uses the widgets\' font');
    eq(light.background, 'rgb(255, 255, 255)', 'light background');
    await page.emulateMedia({ colorScheme: 'dark' });
    const dark = await style();
    eq([dark.background, dark.color], ['rgb(22, 24, 28)', 'rgb(232, 234, 237)'], 'dark mode');
    await shot(page, 'demo-dark');
    await page.close();
  });

  await check('no control token ever appears in the server log', async () => {
    assert(tokens.length > 20, 'tokens were used');
    assert(serverLog.includes('/widgets/pin-set'), 'the log names the widget routes');
    for (const t of tokens) assert(!serverLog.includes(t), 'a token is in the server log');
    assert(!serverLog.includes('token=pct_'), 'a query string is in the server log');
  });
} finally {
  await context.close();
  server.kill('SIGTERM');
  allowedHost.server.close();
  otherHost.server.close();
  rmSync(profile, { recursive: true, force: true });
  await new Promise((r) => server.once('exit', r).once('error', r));
  rmSync(dataDir, { recursive: true, force: true });
}

console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
