/*
 * lib.mjs - helpers for the web page test: a pinhole daemon on loopback
 * with its own config and store, and a tiny SIP phone over UDP (REGISTER
 * with MD5 digest, answers keepalive OPTIONS, answers INVITEs, places a
 * call). Loopback only; every wait has a deadline.
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.PINHOLE_BIN || path.join(ROOT, 'build', 'pinhole');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Poll fn until it returns a truthy value or the deadline passes. */
export async function waitFor(what, fn, timeoutMs, stepMs = 200) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` +
        (last ? `: ${last.message}` : ''));
    await sleep(stepMs);
  }
}

/* A port free for TCP (and, when udp, UDP too) on 127.0.0.1. */
async function tcpPort(port = 0) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
}

async function udpPort(port = 0) {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(port, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

export async function freePort({ udp = false } = {}) {
  for (let i = 0; i < 50; i++) {
    const p = udp ? await udpPort() : await tcpPort();
    try {
      if (udp) await tcpPort(p);
      return p;
    } catch {
      /* taken for the other protocol: try another */
    }
  }
  throw new Error('no free port');
}

/* A UDP socket that never answers: a dead STUN server. */
export async function silentUdp() {
  const s = dgram.createSocket('udp4');
  await new Promise((r) => s.bind(0, '127.0.0.1', r));
  s.on('message', () => {});
  return s;
}

export class Daemon {
  constructor(name, { extraNat = '', rtp = [42400, 42499] } = {}) {
    this.name = name;
    this.extraNat = extraNat;
    this.rtp = rtp;
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `pinhole-web-${name}-`));
    this.conf = path.join(this.tmp, 'pinhole.conf');
    this.logPath = path.join(this.tmp, 'pinhole.log');
    this.proc = null;
  }

  async start() {
    this.port = await freePort({ udp: true });
    this.adminPort = await freePort();
    fs.writeFileSync(this.conf, `[sip]
domain = example.com
listen = 127.0.0.1
port = ${this.port}
[nat]
intranet_subnets = 10.99.0.0/16
${this.extraNat}
[store]
path = ${this.tmp}/p.db
[media]
rtp_port_min = ${this.rtp[0]}
rtp_port_max = ${this.rtp[1]}
[admin]
http = 127.0.0.1:${this.adminPort}
[log]
level = info
`);
    this.base = `http://127.0.0.1:${this.adminPort}`;
    const log = fs.openSync(this.logPath, 'a');
    this.proc = spawn(BIN, ['-c', this.conf, 'run'], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.exited = new Promise((r) => this.proc.once('exit', (code, sig) => r({ code, sig })));
    await waitFor(`${this.name} admin API`, async () => {
      if (this.proc.exitCode !== null)
        throw new Error(`pinhole exited ${this.proc.exitCode}:\n${this.log().slice(-3000)}`);
      const r = await fetch(`${this.base}/api/status`, { signal: AbortSignal.timeout(1000) });
      return r.ok;
    }, 10000, 100);
  }

  cli(...args) {
    return execFileSync(BIN, ['-c', this.conf, ...args], { encoding: 'utf8', timeout: 20000 });
  }

  async api(p) {
    const r = await fetch(this.base + p, { signal: AbortSignal.timeout(3000) });
    if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
    return r.json();
  }

  log() {
    try {
      return fs.readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  /* SIGTERM, then SIGKILL after 5 s; only our own child. */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null)
      return this.exited ? this.exited : null;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    const res = await this.exited;
    clearTimeout(t);
    return res;
  }
}

/* SIP */

const COMPACT = { v: 'via', f: 'from', t: 'to', i: 'call-id', m: 'contact', l: 'content-length', c: 'content-type' };

export function parseSip(buf) {
  const text = buf.toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const body = end < 0 ? '' : text.slice(end + 4);
  const lines = head.split('\r\n');
  const first = lines.shift();
  const headers = [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    let name = line.slice(0, colon).trim().toLowerCase();
    name = COMPACT[name] || name;
    headers.push([name, line.slice(colon + 1).trim()]);
  }
  const m = /^SIP\/2\.0 (\d{3})/.exec(first);
  const msg = {
    first, body, headers,
    isResponse: !!m,
    status: m ? Number(m[1]) : 0,
    method: m ? null : first.split(' ')[0],
    all: (n) => headers.filter(([k]) => k === n.toLowerCase()).map(([, v]) => v),
    get: (n) => msg.all(n)[0],
  };
  return msg;
}

const md5 = (s) => createHash('md5').update(s).digest('hex');

/* Authorization value answering a Digest challenge (MD5, qop=auth). */
export function digest(challenge, method, uri, user, password) {
  const p = {};
  for (const m of challenge.matchAll(/(\w+)=(?:"([^"]*)"|([^\s,]+))/g))
    p[m[1]] = m[2] !== undefined ? m[2] : m[3];
  const alg = p.algorithm || 'MD5';
  if (alg.toUpperCase() !== 'MD5') throw new Error(`unexpected algorithm ${alg}`);
  const ha1 = md5(`${user}:${p.realm}:${password}`);
  const ha2 = md5(`${method}:${uri}`);
  let v = `Digest username="${user}", realm="${p.realm}", nonce="${p.nonce}", uri="${uri}"`;
  if (p.qop && p.qop.split(',').map((x) => x.trim()).includes('auth')) {
    const nc = '00000001', cnonce = randomBytes(4).toString('hex');
    const resp = md5(`${ha1}:${p.nonce}:${nc}:${cnonce}:auth:${ha2}`);
    v += `, response="${resp}", algorithm=MD5, qop=auth, nc=${nc}, cnonce="${cnonce}"`;
  } else {
    v += `, response="${md5(`${ha1}:${p.nonce}:${ha2}`)}", algorithm=MD5`;
  }
  if (p.opaque) v += `, opaque="${p.opaque}"`;
  return v;
}

export function sdpBody(ip, port) {
  return `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\n` +
    `m=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
}

export function sdpAddr(body) {
  return { ip: /c=IN IP4 (\S+)/.exec(body)[1], port: Number(/m=audio (\d+)/.exec(body)[1]) };
}

/*
 * A phone on a UDP socket bound to 127.0.0.1. contactHost is what it
 * claims in Contact/SDP (a private address makes it look NAT'ed).
 * answerOptions: reply 200 to keepalives (false = a closed pinhole).
 * onInvite(msg) returning an SDP body auto-answers 200.
 */
export class Phone {
  constructor(user, server, { contactHost = '127.0.0.1', userAgent = 'pinhole-web-test',
    answerOptions = true, password = 'password1' } = {}) {
    Object.assign(this, { user, server, contactHost, userAgent, answerOptions, password });
    this.callId = randomBytes(8).toString('hex');
    this.cseq = 0;
    this.pending = new Map();	/* branch -> {resolve, reject, timer} */
    this.requests = [];		/* requests received */
    this.onInvite = null;
  }

  async open() {
    this.sock = dgram.createSocket('udp4');
    await new Promise((r) => this.sock.bind(0, '127.0.0.1', r));
    this.port = this.sock.address().port;
    this.sock.on('message', (buf, rinfo) => this.onMessage(parseSip(buf), rinfo));
    return this;
  }

  close() {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    try { this.sock.close(); } catch { /* already closed */ }
  }

  get contactPort() {
    return this.contactHost === '127.0.0.1' ? this.port : 5060;
  }

  get contact() {
    return `<sip:${this.user}@${this.contactHost}:${this.contactPort}>`;
  }

  send(text, port = this.server, host = '127.0.0.1') {
    this.sock.send(Buffer.from(text), port, host);
  }

  onMessage(msg, rinfo) {
    if (msg.isResponse) {
      const branch = /branch=([^;\s,]+)/.exec(msg.get('via') || '');
      const p = branch && this.pending.get(branch[1]);
      if (p && msg.status >= 200) {
        clearTimeout(p.timer);
        this.pending.delete(branch[1]);
        p.resolve(msg);
      }
      return;
    }
    this.requests.push(msg);
    if (msg.method === 'OPTIONS' && this.answerOptions) {
      this.reply(msg, rinfo, 200, 'OK');
    } else if (msg.method === 'INVITE' && this.onInvite) {
      const body = this.onInvite(msg);
      if (body) this.reply(msg, rinfo, 200, 'OK', body, true);
    }
  }

  reply(req, rinfo, status, reason, body = '', withContact = false) {
    const to = req.get('to');
    let text = `SIP/2.0 ${status} ${reason}\r\n`;
    for (const v of req.all('via')) text += `Via: ${v}\r\n`;
    for (const rr of req.all('record-route')) text += `Record-Route: ${rr}\r\n`;
    text += `From: ${req.get('from')}\r\nTo: ${to}${/;tag=/.test(to) ? '' : `;tag=${this.user}tag`}\r\n` +
      `Call-ID: ${req.get('call-id')}\r\nCSeq: ${req.get('cseq')}\r\n`;
    if (withContact) text += `Contact: ${this.contact}\r\n`;
    if (body) text += 'Content-Type: application/sdp\r\n';
    text += `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    this.send(text, rinfo.port, rinfo.address);
  }

  /* Send a request; resolve with its final response (3 s deadline). */
  request(method, ruri, { headers = '', body = '', to = `<${ruri}>`, callId = this.callId } = {}) {
    const branch = 'z9hG4bK' + randomBytes(8).toString('hex');
    this.cseq++;
    const text = `${method} ${ruri} SIP/2.0\r\n` +
      `Via: SIP/2.0/UDP ${this.contactHost}:${this.contactPort};branch=${branch};rport\r\n` +
      `From: <sip:${this.user}@example.com>;tag=${this.user}tag\r\nTo: ${to}\r\n` +
      `Call-ID: ${callId}\r\nCSeq: ${this.cseq} ${method}\r\nMax-Forwards: 70\r\n` +
      `User-Agent: ${this.userAgent}\r\n${headers}` +
      (body ? 'Content-Type: application/sdp\r\n' : '') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(branch);
        reject(new Error(`${this.user}: no final response to ${method}`));
      }, 3000);
      this.pending.set(branch, { resolve, reject, timer });
      this.send(text);
    });
  }

  /* A request that answers one 401/407 challenge. */
  async authed(method, ruri, opts = {}) {
    const r = await this.request(method, ruri, opts);
    if (r.status !== 401 && r.status !== 407) return r;
    if (method === 'INVITE') {
      /* ACK the non-2xx final (same branch as the INVITE) */
      this.send(`ACK ${ruri} SIP/2.0\r\nVia: ${r.get('via')}\r\nFrom: ${r.get('from')}\r\n` +
        `To: ${r.get('to')}\r\nCall-ID: ${r.get('call-id')}\r\nCSeq: ${this.cseq} ACK\r\n` +
        'Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n');
    }
    const hdr = r.status === 401 ? 'Authorization' : 'Proxy-Authorization';
    const ch = r.get(r.status === 401 ? 'www-authenticate' : 'proxy-authenticate');
    const cred = digest(ch, method, ruri, this.user, this.password);
    return this.request(method, ruri, { ...opts, headers: `${hdr}: ${cred}\r\n${opts.headers || ''}` });
  }

  register(expires = 300) {
    return this.authed('REGISTER', 'sip:example.com', {
      to: `<sip:${this.user}@example.com>`,
      headers: `Contact: ${this.contact}\r\nExpires: ${expires}\r\n`,
    });
  }
}

/* A minimal RTP packet (PCMU, 20 ms of silence). */
export function rtp(seq) {
  const b = Buffer.alloc(172, 0xff);
  b[0] = 0x80; b[1] = 0x00; b.writeUInt16BE(seq & 0xffff, 2);
  b.fill(0, 4, 12);
  return b;
}
