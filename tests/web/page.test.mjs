/*
 * page.test.mjs - the diagnostics page in a real browser (headless Debian
 * Chromium driven by playwright-core) against real daemons on loopback.
 *
 * Daemon A is a registrar with fast keepalives: alice registers from
 * 127.0.0.1 with a private Contact (behind-nat) and a user agent full of
 * markup, bob registers the same way but never answers keepalives (his
 * pinhole "closed"), carol is a public phone. alice calls carol and only
 * alice sends RTP: one-way audio. Daemon B is behind a NAT whose STUN
 * server never answers. Everything shown is produced by the daemons; the
 * test only reads the page. Run: node --test tests/web/ (see run.sh).
 */
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { BIN, ROOT, Daemon, Phone, rtp, sdpAddr, sdpBody, silentUdp, sleep, waitFor } from './lib.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'build', 'web');
/* Markup and quotes in a network-supplied string: must show as text. */
const NASTY_UA = 'Evil<b id="injected">Phone</b> <img src=x onerror="window.__pwned=1"> "q" & \'a\'';

let A, B, stunSink, ctx, userDataDir, pageA, pageB;
const phones = [];
const browserErrors = [];
let anyFailed = false;

/* node:test's test(), noting a failure so after() keeps the daemons' logs. */
function test(name, fn) {
  return nodeTest(name, async (t) => {
    try {
      return await fn(t);
    } catch (e) {
      anyFailed = true;
      throw e;
    }
  });
}

before(async () => {
  anyFailed = true;	/* until set-up completes */
  assert.ok(fs.existsSync(BIN), `${BIN} missing: run make first`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing: apt-get install chromium`);
  stunSink = await silentUdp();
  A = new Daemon('a', { extraNat: 'keepalive_interval = 2', rtp: [42400, 42499] });
  B = new Daemon('b', {
    extraNat: `behind_nat = yes\nstun_server = 127.0.0.1:${stunSink.address().port}\nstun_refresh = 5`,
    rtp: [42500, 42599],
  });
  await Promise.all([A.start(), B.start()]);
  for (const u of ['alice', 'bob', 'carol']) A.cli('user', 'add', u, 'password1');

  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinhole-web-chromium-'));
  ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1366, height: 768 },
    timeout: 30000,
  });
  ctx.setDefaultTimeout(15000);
  anyFailed = false;
});

after(async () => {
  for (const p of phones) p.close();
  if (ctx) await ctx.close().catch(() => {});
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  if (stunSink) stunSink.close();
  for (const d of [A, B]) {
    if (!d) continue;
    const res = await d.stop();
    if (anyFailed || (res && res.code !== 0)) {
      console.log(`# pinhole ${d.name} exit ${JSON.stringify(res)}, files kept in ${d.tmp}; log tail:`);
      console.log(d.log().slice(-4000).replace(/^/gm, '#   '));
    } else {
      fs.rmSync(d.tmp, { recursive: true, force: true });
    }
  }
});

function watchErrors(page, label) {
  page.on('pageerror', (e) => browserErrors.push(`${label} pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') browserErrors.push(`${label} console: ${m.text()}`);
  });
  page.on('requestfailed', (r) => browserErrors.push(`${label} request failed: ${r.url()}`));
}

async function openPage(d, label) {
  const page = await ctx.newPage();
  watchErrors(page, label);
  const resp = await page.goto(`${d.base}/`, { waitUntil: 'load' });
  assert.equal(resp.status(), 200);
  return page;
}

/* Wait until the page's locator has text matching re. */
async function waitText(locator, re, what, timeoutMs = 15000) {
  return waitFor(what, async () => {
    if (!(await locator.count())) return false;
    const t = await locator.first().textContent();
    return re.test(t) ? t : false;
  }, timeoutMs, 250);
}

test('embedded page.c is up to date with src/admin/page/', () => {
  const dir = path.join(ROOT, 'src', 'admin', 'page');
  const files = fs.readdirSync(dir).sort().map((f) => path.join(dir, f));
  const out = path.join(os.tmpdir(), `pinhole-page-${process.pid}.c`);
  execFileSync(path.join(ROOT, 'src', 'admin', 'embed.sh'), [out, ...files], { cwd: ROOT });
  const fresh = fs.readFileSync(out, 'utf8');
  fs.rmSync(out);
  assert.equal(fresh, fs.readFileSync(path.join(ROOT, 'src', 'admin', 'page.c'), 'utf8'),
    'src/admin/page.c is stale: run src/admin/embed.sh src/admin/page.c src/admin/page/*');
});

test('page and its assets are served with security headers', async () => {
  for (const [p, type] of [['/', 'text/html; charset=utf-8'],
    ['/app.js', 'text/javascript; charset=utf-8'], ['/app.css', 'text/css; charset=utf-8']]) {
    const r = await fetch(A.base + p, { signal: AbortSignal.timeout(3000) });
    assert.equal(r.status, 200, p);
    assert.equal(r.headers.get('content-type'), type, p);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', p);
    assert.equal(r.headers.get('cache-control'), 'no-store', p);
    const csp = r.headers.get('content-security-policy') || '';
    assert.match(csp, /script-src 'self'/, p);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, p);
    const text = await r.text();
    assert.ok(text.length > 100, p);
    /* served byte for byte as written (embed.sh escapes backslashes, quotes) */
    const file = p === '/' ? 'index.html' : p.slice(1);
    assert.equal(text, fs.readFileSync(path.join(ROOT, 'src', 'admin', 'page', file), 'utf8'), p);
    /* the bundle never puts API data through an HTML parser */
    if (p === '/app.js') assert.doesNotMatch(text, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    if (p === '/') assert.doesNotMatch(text, /<script>|\bon\w+=/, 'no inline script');
  }
  const post = await fetch(`${A.base}/`, { method: 'POST', signal: AbortSignal.timeout(3000) });
  assert.equal(post.status, 405);
});

test('registrations: alice behind-nat with her user agent shown as text', async () => {
  const alice = await new Phone('alice', A.port, { contactHost: '192.168.1.5', userAgent: NASTY_UA }).open();
  const bob = await new Phone('bob', A.port, { contactHost: '192.168.1.6', answerOptions: false }).open();
  const carol = await new Phone('carol', A.port, { userAgent: 'CarolPhone/2.1' }).open();
  phones.push(alice, bob, carol);
  for (const p of [alice, bob, carol]) {
    const r = await p.register();
    assert.equal(r.status, 200, `${p.user} REGISTER: ${r.first}`);
  }
  const regs = await A.api('/api/registrations');
  const byAor = Object.fromEntries(regs.map((r) => [r.aor, r]));
  assert.equal(byAor['alice@example.com'].verdict, 'behind-nat');
  assert.equal(byAor['carol@example.com'].verdict, 'public');

  pageA = await openPage(A, 'A');
  const row = pageA.locator('#regs-body tr[data-aor="alice@example.com"]');
  const verdict = await waitText(row.locator('.badge'), /behind-nat/, 'alice behind-nat on the page');
  assert.equal(verdict.trim(), 'behind-nat');
  // no relayed media yet: the router's behaviour is not known
  assert.equal((await row.locator('[data-nat]').textContent()).trim(), 'NAT: unknown');
  /* the reason is there, as a tooltip and a sub-line */
  const reason = byAor['alice@example.com'].nat_reason;
  if (reason) {
    assert.equal(await row.locator('.badge').getAttribute('title'), reason);
    assert.equal((await row.locator('.reason').textContent()).trim(), reason);
  }
  assert.equal(await pageA.locator('#regs-body tr').count(), 3);
  assert.match(await row.textContent(), /192\.168\.1\.5/);
  assert.match(await pageA.locator('#regs-body tr[data-aor="carol@example.com"] .badge').textContent(), /public/);

  /* the markup arrived as text: no element made from it, no script run */
  assert.equal((await row.locator('td.ua').textContent()).trim(), NASTY_UA);
  assert.equal(await pageA.locator('#injected').count(), 0);
  assert.equal(await pageA.locator('#regs-body img').count(), 0);
  await sleep(300);
  assert.equal(await pageA.evaluate(() => window.__pwned), undefined);

  /* status strip */
  await waitText(pageA.locator('#st-fields [data-field="domain"] dd'), /example\.com/, 'domain in the strip');
  await waitText(pageA.locator('#st-fields [data-field="bindings"] dd'), /^3$/, '3 bindings in the strip');
  assert.match(await pageA.locator('#conn').textContent(), /live/);
});

test('calls: a one-way relayed stream is highlighted', async () => {
  const [alice, , carol] = phones;
  assert.ok(alice && carol, 'registrations test ran');
  const rtpA = dgram.createSocket('udp4');
  await new Promise((r) => rtpA.bind(0, '127.0.0.1', r));
  const rtpC = dgram.createSocket('udp4');
  await new Promise((r) => rtpC.bind(0, '127.0.0.1', r));
  try {
    carol.onInvite = () => sdpBody('127.0.0.1', rtpC.address().port);
    const ok = await alice.authed('INVITE', 'sip:carol@example.com', {
      to: '<sip:carol@example.com>', callId: 'webtest-call-1',
      headers: `Contact: ${alice.contact}\r\n`, body: sdpBody('192.168.1.5', 4000),
    });
    assert.equal(ok.status, 200, ok.first);
    const relay = sdpAddr(ok.body);
    assert.equal(relay.ip, '127.0.0.1');
    /* alice talks, carol's RTP never arrives: one-way audio */
    for (let i = 0; i < 40; i++) {
      rtpA.send(rtp(i), relay.port, '127.0.0.1');
      await sleep(5);
    }
    const calls = await waitFor('relayed call in the API', async () =>
      (await A.api('/api/calls')).find((c) => Array.isArray(c.streams) && c.streams.length), 5000);
    assert.ok(calls.streams[0].a.rx_packets + calls.streams[0].a.dropped > 0);

    const call = pageA.locator(`#calls-list .call[data-call-id="webtest-call-1"][data-oneway="yes"]`);
    await waitText(call.locator('.flag').first(), /one-way/, 'one-way call flagged on the page');
    /* one card per call: the INVITE transaction and the media session */
    assert.equal(await pageA.locator('#calls-list .call[data-call-id="webtest-call-1"]').count(), 1);
    const stream = call.locator('tr.oneway[data-stream="0"]');
    assert.equal(await stream.count(), 1);
    assert.equal(await stream.getAttribute('data-oneway'), 'b');
    assert.match(await stream.textContent(), /one-way: side A sends, nothing from side B/);
  } finally {
    rtpA.close();
    rtpC.close();
  }
});

test('ladder: the call is listed and drawn with its INVITE arrows, a message opens whole', async () => {
  const [alice, , carol] = phones;
  assert.ok(alice && carol, 'registrations test ran');
  const alicePeer = `127.0.0.1:${alice.port}`, carolPeer = `127.0.0.1:${carol.port}`;
  const us = `127.0.0.1:${A.port}`;
  const list = await A.api('/api/ladders');
  const entry = list.find((l) => l.call_id === 'webtest-call-1');
  assert.ok(entry, 'the call has a ladder');
  assert.equal(entry.kind, 'call');
  assert.match(entry.first_line, /^INVITE sip:carol@example\.com SIP\/2\.0$/);
  /* registrations are hidden unless asked for */
  const reg = list.find((l) => l.kind === 'other');
  assert.ok(reg, 'the REGISTERs have ladders too');

  const row = pageA.locator('#ladders-body tr[data-call-id="webtest-call-1"]');
  await waitText(row, /INVITE sip:carol@example\.com/, 'the call in the recent calls list');
  assert.equal(await pageA.locator(`#ladders-body tr[data-call-id="${reg.call_id}"]`).count(), 0);
  await pageA.locator('#ladders-all').check();
  await waitText(pageA.locator(`#ladders-body tr[data-call-id="${reg.call_id}"]`), /REGISTER/,
    'a registration listed with the box ticked');
  await pageA.locator('#ladders-all').uncheck();

  await row.click();
  const inInvite = pageA.locator(`#ladder-table tr.msg[data-dir="in"][data-method="INVITE"][data-remote="${alicePeer}"]`);
  await waitText(inInvite.locator('.arrow'), /INVITE sip:carol@example\.com SIP\/2\.0/, 'INVITE arrow from alice');
  assert.equal(await row.getAttribute('class'), 'selected');
  /* alice is left of pinhole, so her INVITE points right; the forwarded
   * INVITE goes on right to carol's lane */
  assert.match(await inInvite.first().locator('.arrow').getAttribute('class'), /\bright\b/);
  const outInvite = pageA.locator(`#ladder-table tr.msg[data-dir="out"][data-method="INVITE"][data-remote="${carolPeer}"]`);
  assert.equal(await outInvite.count(), 1);
  assert.match(await outInvite.locator('.arrow').textContent(), /^INVITE sip:carol@127\.0\.0\.1/);
  assert.match(await outInvite.locator('.arrow').getAttribute('class'), /\bright\b/);
  const lanes = pageA.locator('#ladder-table th.lane');
  assert.deepEqual(await lanes.evaluateAll((ths) => ths.map((th) => th.dataset.lane)),
    [alicePeer, 'pinhole', carolPeer]);
  assert.match(await lanes.nth(1).textContent(), new RegExp(us.replace(/\./g, '\\.')));
  /* the 407 goes back left to alice, the 200 from carol comes in leftwards */
  const challenge = pageA.locator('#ladder-table tr.msg[data-status="407"]');
  assert.equal(await challenge.count(), 1);
  assert.match(await challenge.locator('.arrow').getAttribute('class'), /\bleft\b.*\bauth\b/);
  assert.ok(await pageA.locator(`#ladder-table tr.msg[data-status="200"][data-dir="in"][data-remote="${carolPeer}"]`).count() >= 1);

  /* a click shows the message as it left pinhole: our Via on top */
  await outInvite.click();
  const detail = pageA.locator('#ladder-table tr.detail pre.sipmsg');
  await waitText(detail, /Call-ID: webtest-call-1/, 'the forwarded INVITE in full');
  const text = await detail.textContent();
  assert.match(text.split('\n')[1], new RegExp(`^Via: SIP/2\\.0/UDP ${us.replace(/\./g, '\\.')};branch=z9hG4bKph`));
  /* alice's user agent header travelled along: still text only */
  await inInvite.first().click();
  await waitText(detail, /User-Agent: Evil<b id="injected">Phone<\/b>/, 'the received INVITE in full');
  assert.equal(await pageA.locator('#injected').count(), 0);
  assert.equal(await pageA.locator('#ladder-table img').count(), 0);
  fs.mkdirSync(SHOTS, { recursive: true });
  /* page coordinates (scrolled to the top) so the sticky strip does not
   * cover the section */
  await pageA.evaluate(() => window.scrollTo(0, 0));
  const box = await pageA.locator('#ladder').boundingBox();
  await pageA.screenshot({ path: path.join(SHOTS, 'ladder.png'), fullPage: true, clip: box });
  /* closed again so the later full-page shot stays short */
  await inInvite.first().click();
  assert.equal(await detail.count(), 0);
});

test('alarms: unanswered keepalives mark bob unreachable; one-way media raised', async () => {
  /* keepalive_interval = 2: three unanswered pings take ~8 s */
  const alarms = await waitFor('keepalive-unanswered and one-way-media alarms', async () => {
    const list = await A.api('/api/alarms');
    const codes = new Set(list.map((a) => a.code));
    return codes.has('keepalive-unanswered') && codes.has('one-way-media') ? list : false;
  }, 25000, 500);
  const ka = alarms.find((a) => a.code === 'keepalive-unanswered');
  assert.equal(ka.subject, 'bob@example.com');

  const bobRow = pageA.locator('#regs-body tr.unreachable[data-aor="bob@example.com"]');
  await waitText(bobRow, /unreachable/, 'bob highlighted as unreachable');
  assert.equal(await pageA.locator('#regs-body tr.unreachable').count(), 1);

  for (const a of alarms.filter((x) => ['keepalive-unanswered', 'one-way-media'].includes(x.code))) {
    const li = pageA.locator(`#alarms-list li[data-id="${a.id}"]`);
    await waitText(li, new RegExp(a.code), `alarm ${a.code} on the page`);
    assert.equal(await li.getAttribute('data-severity'), a.severity);
    assert.equal((await li.locator('.text').textContent()).trim(), a.text);
    assert.equal((await li.locator('.sev').textContent()).trim(), a.severity);
  }
  await sleep(3500);	/* one more refresh so the screenshot is settled */
  fs.mkdirSync(SHOTS, { recursive: true });
  await pageA.screenshot({ path: path.join(SHOTS, 'page.png'), fullPage: true });
});

test('alarms: stun-failed on a daemon behind NAT with a dead STUN server', async () => {
  const alarm = await waitFor('stun-failed alarm in /api/alarms', async () =>
    (await B.api('/api/alarms')).find((a) => a.code === 'stun-failed'), 25000, 500);
  assert.equal(alarm.severity, 'major');

  pageB = await openPage(B, 'B');
  const li = pageB.locator('#alarms-list li[data-code="stun-failed"]');
  await waitText(li, /stun-failed/, 'stun-failed on the page');
  assert.equal(await li.getAttribute('data-severity'), 'major');
  assert.match(await li.locator('.text').textContent(), /no answer from STUN server|cannot resolve STUN/);
  assert.match(await pageB.locator('#st-fields [data-field="near-end NAT"] dd').textContent(),
    /behind NAT, public address unknown/);
  /* no data invented: no registrations, no calls, no ladders */
  assert.equal(await pageB.locator('#regs-body tr').count(), 0);
  assert.equal(await pageB.locator('#regs-empty').isVisible(), true);
  assert.equal(await pageB.locator('#calls-empty').isVisible(), true);
  assert.equal(await pageB.locator('#ladders-body tr').count(), 0);
  assert.equal(await pageB.locator('#ladders-empty').isVisible(), true);
  assert.equal(await pageB.locator('#ladder-view').isVisible(), false);
  fs.mkdirSync(SHOTS, { recursive: true });
  await pageB.screenshot({ path: path.join(SHOTS, 'page-stun.png'), fullPage: true });
});

test('no script errors, CSP violations or failed requests in the browser', () => {
  assert.deepEqual(browserErrors, []);
});

test('daemons still running (no crash while serving the page)', () => {
  for (const d of [A, B]) assert.equal(d.proc.exitCode, null, `${d.name} exited:\n${d.log().slice(-3000)}`);
});

test('a daemon that stops answering is shown, the last data kept', async () => {
  assert.ok(pageB, 'stun test ran');
  await B.stop();
  await waitText(pageB.locator('#conn'), /daemon not answering/, 'connection state on the page', 10000);
  assert.equal(await pageB.locator('#conn').getAttribute('data-state'), 'error');
  assert.equal(await pageB.locator('#alarms-error').isVisible(), true);
  /* the alarm seen before is still listed */
  assert.equal(await pageB.locator('#alarms-list li[data-code="stun-failed"]').count(), 1);
});
