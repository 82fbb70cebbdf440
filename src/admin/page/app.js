/*
 * pinhole diagnostics page: polls the admin JSON API and redraws the
 * status strip, alarms, registrations, calls and the recent calls'
 * SIP ladders (a chosen call is drawn as a sequence diagram).
 *
 * Everything in the API can come from the network (contacts, user agents,
 * Call-IDs), so no API string ever goes through an HTML parser: the DOM
 * is built with createElement and text nodes only (see el() below). Each section
 * redraws from scratch on every poll; at a few hundred rows that costs
 * less than diffing would, and a failed fetch leaves the last good view
 * with an error line over it.
 */
'use strict';

const REFRESH_MS = 3000;
const FETCH_TIMEOUT_MS = 2500;

/* el('td', {class: 'x', title: t}, child, 'text', ...): strings become
 * text nodes, null/undefined/false children are skipped. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    node.setAttribute(k, String(v));	/* a value, never parsed as markup */
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const $ = (id) => document.getElementById(id);
const str = (v) => (v === null || v === undefined ? '' : String(v));

function fmtDuration(s) {
  s = Math.max(0, Math.floor(Number(s) || 0));
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
  const m = Math.floor(s % 3600 / 60), sec = s % 60;
  if (d) return `${d}d ${h}h ${m}m`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

function fmtTime(unix) {
  if (unix === null || unix === undefined) return '';
  const d = new Date(Number(unix) * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function ago(unix) {
  if (unix === null || unix === undefined) return '';
  return fmtDuration(Date.now() / 1000 - Number(unix)) + ' ago';
}

async function getJSON(path) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const r = await fetch(path, { cache: 'no-store', signal: ctl.signal });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return await r.json();
  } catch (e) {
    throw new Error(e.name === 'AbortError' ? `${path}: timed out` : e.message);
  } finally {
    clearTimeout(timer);
  }
}

function showError(id, err) {
  const box = $(id);
  box.hidden = !err;
  box.textContent = err ? `Cannot refresh: ${err.message} (showing the last data)` : '';
}

/* Status strip */

function renderStatus(st) {
  const nat = st.near_end_nat || {};
  const fields = [
    ['domain', st.domain],
    ['node', st.node],
    ['SIP port', st.sip_port],
    ['uptime', fmtDuration(st.uptime)],
    ['bindings', st.bindings],
    ['transactions', st.transactions],
    ['log', st.log_level],
  ];
  let natText = 'not behind NAT';
  let natAlert = false;
  if (nat.behind_nat) {
    natText = nat.public_ip ? `behind NAT, public ${nat.public_ip} (${str(nat.source)})`
      : 'behind NAT, public address unknown';
    natAlert = !nat.public_ip;
  }
  fields.push(['near-end NAT', natText, natAlert]);
  fields.push(['alarms raised', st.alarms_raised, Number(st.alarms_raised) > 0]);

  $('st-version').textContent = st.version ? `v${st.version}` : '';
  $('st-fields').replaceChildren(...fields
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v, alert]) => el('div', { 'data-field': k },
      el('dt', {}, k), el('dd', { class: alert ? 'alert' : null }, str(v)))));
}

/* Alarms */

function renderAlarms(alarms) {
  $('alarms-count').textContent = alarms.length ? `(${alarms.length})` : '';
  $('alarms-empty').hidden = alarms.length > 0;
  $('alarms-list').replaceChildren(...alarms.map((a) => {
    const sev = str(a.severity);
    return el('li', { 'data-code': a.code, 'data-severity': sev, 'data-id': a.id },
      el('span', { class: 'when', title: ago(a.time) }, fmtTime(a.time)),
      el('span', { class: 'sev', 'data-severity': sev }, sev),
      el('span', { class: 'head' }, str(a.code),
        a.subject ? el('span', { class: 'subject wrap' }, str(a.subject)) : null),
      el('span', { class: 'text wrap' }, str(a.text)));
  }));
}

/* Registrations */

const VERDICT_HELP = {
  'local': 'on a local subnet: reached directly',
  'public': 'public address, no NAT seen',
  'behind-nat': 'behind a NAT: reached through the flow it registered from',
  'nonat-suspect': 'looks public, but a private address left in the message or the active check (OPTIONS from another port, unanswered) shows a NAT: phone-side STUN or a SIP ALG',
};

function renderRegistrations(regs) {
  $('regs-count').textContent = regs.length ? `(${regs.length})` : '';
  $('regs-empty').hidden = regs.length > 0;
  $('regs-body').replaceChildren(...regs.map((r) => {
    const verdict = str(r.verdict);
    const reason = str(r.nat_reason);
    const reachable = r.reachable !== false;
    const ka = [];
    if (r.last_keepalive !== null && r.last_keepalive !== undefined)
      ka.push(el('span', { title: fmtTime(r.last_keepalive) }, `answered ${ago(r.last_keepalive)}`));
    else
      ka.push(el('span', { class: 'muted' }, 'none answered'));
    if (Number(r.keepalive_failures) > 0)
      ka.push(el('span', { class: 'sub flag' }, `${r.keepalive_failures} unanswered`));
    if (!reachable)
      ka.push(el('span', { class: 'badge down' }, 'unreachable'));

    return el('tr', { class: reachable ? null : 'unreachable', 'data-aor': r.aor, 'data-verdict': verdict },
      el('td', { class: 'wrap' }, str(r.aor)),
      el('td', {},
        el('span', { class: 'badge', 'data-verdict': verdict,
          title: reason || VERDICT_HELP[verdict] || null }, verdict || '?'),
        reason ? el('span', { class: 'sub reason' }, reason) : null,
        r.nat_behaviour && r.nat_behaviour !== 'none'
          ? el('span', { class: 'sub', 'data-nat': str(r.nat_behaviour),
            title: str(r.nat_behaviour_why) }, `NAT: ${str(r.nat_behaviour)}`) : null),
      el('td', { class: 'mono wrap' }, str(r.contact),
        r.private_contact && r.private_contact !== r.contact
          ? el('span', { class: 'sub' }, `private: ${r.private_contact}`) : null),
      el('td', { class: 'mono nowrap' }, str(r.public)),
      el('td', {}, str(r.transport).toUpperCase(),
        el('span', { class: 'sub mono' }, str(r.local))),
      el('td', { class: 'num', title: r.expires > 0 ? `expires in ${fmtDuration(r.expires)}` : 'expired' },
        r.expires > 0 ? fmtDuration(r.expires) : 'expired'),
      el('td', {}, ka),
      el('td', { class: 'ua' }, r.user_agent === null || r.user_agent === undefined
        ? el('span', { class: 'muted' }, '-') : str(r.user_agent)),
      el('td', {}, str(r.node), el('span', { class: 'sub' },
        r.q === undefined || r.q === null ? '' : `q=${r.q}`)));
  }));
}

/* Calls */

/* Packets that reached the relay from this side's phone: forwarded ones
 * plus those dropped because the other side had not latched yet. */
function heard(side) {
  return (Number(side && side.rx_packets) || 0) + (Number(side && side.dropped) || 0);
}

/* One-way: the relay heard one side's phone and nothing from the other.
 * Returns the silent side ('a' or 'b') or null. */
function oneWay(st) {
  const a = heard(st.a), b = heard(st.b);
  if (a > 0 && b === 0) return 'b';
  if (b > 0 && a === 0) return 'a';
  return null;
}

const SIDE_COLS = ['port', 'peer', 'rx pkts', 'rx bytes', 'rtcp', 'dropped', 'relatch'];

function sideCells(side, silent) {
  const s = side || {};
  const zero = silent ? 'num zero' : 'num';
  return [
    el('td', { class: 'num first' }, str(s.port)),
    el('td', { class: 'mono nowrap' }, s.latched ? str(s.peer) : el('span', { class: 'muted', title: 'no packet yet: not latched' }, 'not latched')),
    el('td', { class: zero }, str(s.rx_packets)),
    el('td', { class: 'num' }, str(s.rx_bytes)),
    el('td', { class: 'num' }, str(s.rtcp_packets)),
    el('td', { class: 'num' }, str(s.dropped)),
    el('td', { class: 'num' }, str(s.relatches)),
  ];
}

function streamTable(streams) {
  const head1 = el('tr', {}, el('th', { rowspan: 2 }, 'stream'),
    el('th', { class: 'side', colspan: SIDE_COLS.length }, 'side A (caller)'),
    el('th', { class: 'side', colspan: SIDE_COLS.length }, 'side B (callee)'),
    el('th', { rowspan: 2 }, 'diagnosis'));
  const head2 = el('tr', {}, [...SIDE_COLS, ...SIDE_COLS].map((c, i) =>
    el('th', { class: (i % SIDE_COLS.length === 0 ? 'first ' : '') + (c === 'peer' ? '' : 'num') }, c)));
  const rows = streams.map((st) => {
    const silent = oneWay(st);
    let diag = el('span', { class: 'muted' }, 'no media yet');
    if (silent) {
      const talker = silent === 'a' ? 'B' : 'A';
      diag = el('span', { class: 'flag' },
        `one-way: side ${talker} sends, nothing from side ${silent.toUpperCase()}`);
    } else if (heard(st.a) > 0) {
      diag = el('span', {}, 'both directions');
    }
    return el('tr', { class: silent ? 'oneway' : null, 'data-stream': st.index, 'data-oneway': silent || null },
      el('td', { class: 'num' }, str(st.index)),
      sideCells(st.a, silent === 'a'),
      sideCells(st.b, silent === 'b'),
      el('td', {}, diag));
  });
  return el('div', { class: 'scroll' },
    el('table', { class: 'streams' }, el('thead', {}, head1, head2), el('tbody', {}, rows)));
}

function legTable(legs) {
  return el('div', { class: 'scroll' }, el('table', { class: 'legs' },
    el('thead', {}, el('tr', {}, ['branch target', 'status', 'transport', 'remote'].map((h) => el('th', {}, h)))),
    el('tbody', {}, legs.map((l) => el('tr', {},
      el('td', { class: 'mono wrap' }, str(l.target)),
      el('td', { class: 'num' }, l.status ? str(l.status) : '-'),
      el('td', {}, str(l.transport).toUpperCase()),
      el('td', { class: 'mono' }, str(l.remote)))))));
}

/* The API lists a call twice when it is both proxied and relayed (the
 * INVITE transaction and the media session share the Call-ID): show one
 * card per Call-ID with the signalling branches and the media streams. */
function groupCalls(calls) {
  const byId = new Map();
  for (const c of calls) {
    const key = str(c.call_id || c.id);
    if (!byId.has(key)) byId.set(key, { callId: key, sig: null, media: null });
    const g = byId.get(key);
    if (Array.isArray(c.streams)) g.media = c;
    else g.sig = c;
  }
  return [...byId.values()];
}

function renderCalls(calls) {
  const groups = groupCalls(calls);
  $('calls-count').textContent = groups.length ? `(${groups.length})` : '';
  $('calls-empty').hidden = groups.length > 0;
  $('calls-list').replaceChildren(...groups.map((g) => {
    const { sig, media } = g;
    const streams = media ? media.streams : [];
    const legs = sig && Array.isArray(sig.legs) ? sig.legs : [];
    const oneway = streams.some((st) => oneWay(st));
    const start = (sig && sig.start) || (media && media.start);
    return el('div', { class: 'call', 'data-call-id': g.callId, 'data-oneway': oneway ? 'yes' : null },
      el('div', { class: 'callhead' },
        el('span', { class: 'cid mono' }, g.callId),
        sig ? el('span', { class: 'badge plain', title: 'INVITE transaction state' }, `signalling ${str(sig.state)}`) : null,
        media ? el('span', { class: 'badge plain', title: 'media session state' }, `media ${str(media.state)}`) : null,
        sig && sig.from ? el('span', { class: 'wrap' }, `from ${sig.from}`) : null,
        sig && sig.to ? el('span', { class: 'wrap' }, `to ${sig.to}`) : null,
        start ? el('span', { class: 'muted', title: fmtTime(start) }, `started ${ago(start)}`) : null,
        oneway ? el('span', { class: 'flag' }, 'one-way media') : null),
      legs.length ? legTable(legs) : null,
      streams.length ? streamTable(streams)
        : el('p', { class: 'empty' }, media ? 'no relayed stream' : 'media not relayed'));
  }));
}

/* SIP ladder */

const LANES_MAX = 8;	/* pinhole + 7 remotes; more share the last lane */

/* The chosen call: its Call-ID, the message count its ladder had when
 * drawn (redrawn when the list shows more), the message shown whole. */
const ladderState = { callId: null, count: -1, open: null, listKey: '' };

function fmtMs(ms, withDate) {
  const d = new Date(Number(ms));
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  return withDate ? `${fmtTime(Number(ms) / 1000).slice(0, 10)} ${t}` : t;
}

function renderLadders(list) {
  const all = $('ladders-all').checked;
  const rows = list.filter((l) => all || l.kind === 'call');
  const key = JSON.stringify([all, ladderState.callId, rows]);
  $('ladders-count').textContent = rows.length ? `(${rows.length})` : '';
  $('ladders-empty').hidden = rows.length > 0;
  if (key !== ladderState.listKey) {
    ladderState.listKey = key;
    $('ladders-body').replaceChildren(...rows.map((l) => {
      const tr = el('tr', { 'data-call-id': l.call_id, 'data-kind': l.kind, tabindex: 0,
        class: [l.kind === 'call' ? null : 'other', l.call_id === ladderState.callId ? 'selected' : null]
          .filter(Boolean).join(' ') || null },
      el('td', { class: 'nowrap', title: ago(Number(l.time) / 1000) }, fmtMs(l.time, true)),
      el('td', { class: 'mono cid' }, str(l.call_id)),
      el('td', { class: 'mono wrap' }, str(l.first_line)),
      el('td', { class: 'num' }, str(l.messages), Number(l.dropped) > 0
        ? el('span', { class: 'sub', title: 'messages not kept (the first 16 and the latest are)' },
          `${l.dropped} not kept`) : null));
      tr.addEventListener('click', () => openLadder(l.call_id));
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') openLadder(l.call_id); });
      return tr;
    }));
  }
  /* the chosen call got more messages: draw it again */
  const cur = list.find((l) => l.call_id === ladderState.callId);
  if (cur && Number(cur.messages) !== ladderState.count) loadLadder();
}

function openLadder(callId) {
  if (ladderState.callId !== callId) ladderState.open = null;
  ladderState.callId = callId;
  ladderState.count = -1;
  ladderState.listKey = '';
  for (const tr of $('ladders-body').children)
    tr.classList.toggle('selected', tr.dataset.callId === callId);
  loadLadder();
}

async function loadLadder() {
  const callId = ladderState.callId;
  if (callId === null) return;
  $('ladder-view').hidden = false;
  try {
    const ld = await getJSON(`/api/calls/ladder?call_id=${encodeURIComponent(callId)}`);
    if (callId !== ladderState.callId) return;	/* another call was picked meanwhile */
    $('ladder-error').hidden = true;
    renderLadder(ld);
  } catch (e) {
    if (callId !== ladderState.callId) return;
    $('ladder-error').hidden = false;
    $('ladder-error').textContent = /HTTP 404/.test(e.message)
      ? 'This call is no longer recorded (newer calls pushed it out).' : `Cannot load the ladder: ${e.message}`;
  }
}

/* Lanes: the first remote (usually the caller) left of pinhole, the
 * others to its right in order of appearance. */
function ladderLanes(msgs) {
  const remotes = [];
  for (const m of msgs) if (!remotes.includes(m.remote)) remotes.push(m.remote);
  const shown = remotes.slice(0, LANES_MAX - 1);
  const lanes = shown.length
    ? [{ key: shown[0] }, { key: null }, ...shown.slice(1).map((r) => ({ key: r }))]
    : [{ key: null }];
  const index = new Map();
  lanes.forEach((l, i) => { if (l.key !== null) index.set(l.key, i); });
  const us = lanes.findIndex((l) => l.key === null);
  const laneOf = (remote) => (index.has(remote) ? index.get(remote) : lanes.length - 1);
  return { lanes, us, laneOf, extra: remotes.length - shown.length };
}

function arrowClass(m) {
  const st = /^SIP\/2\.0 (\d)(\d\d)/.exec(m.first_line);
  if (!st) return 'req';
  if (st[1] + st[2] === '401' || st[1] + st[2] === '407') return 'auth';
  return `r${Math.min(Number(st[1]), 4)}xx`;
}

function messageDetail(m, ncols) {
  const meta = `${fmtMs(m.t, true)}  ${str(m.proto).toUpperCase()}  ` +
    (m.dir === 'in' ? `received by ${m.local} from ${m.remote}` : `sent from ${m.local} to ${m.remote}`) +
    `  ${m.size} bytes` + (m.truncated ? ' (only the first 4 KB kept)' : '');
  return el('tr', { class: 'detail' }, el('td', { colspan: ncols },
    el('p', { class: 'msgmeta' }, meta),
    el('pre', { class: 'sipmsg' }, str(m.text))));
}

function renderLadder(ld) {
  const msgs = Array.isArray(ld.messages) ? ld.messages : [];
  ladderState.count = msgs.length + (Number(ld.dropped) || 0);
  const { lanes, us, laneOf, extra } = ladderLanes(msgs);
  const locals = [...new Set(msgs.map((m) => m.local))];
  $('ladder-title').textContent = `Call-ID ${str(ld.call_id)}: ${ladderState.count} message(s)` +
    (ld.dropped ? `, ${ld.dropped} not kept` : '') +
    (msgs.length ? `, from ${fmtMs(msgs[0].t, true)}` : '') +
    (extra ? ` (${extra} more addresses share the last column)` : '');

  const head = el('tr', {}, el('th', { class: 'when' }, 'time'),
    lanes.map((l) => (l.key === null
      ? el('th', { class: 'lane us', 'data-lane': 'pinhole' }, 'pinhole',
        el('span', { class: 'sub mono' }, locals.join(' ')))
      : el('th', { class: 'lane mono', 'data-lane': l.key }, l.key))));
  const ncols = lanes.length + 1;
  const t0 = msgs.length ? Number(msgs[0].t) : 0;
  const body = [];
  msgs.forEach((m, i) => {
    if (ld.dropped && i === Number(ld.dropped_at))
      body.push(el('tr', { class: 'gap' }, el('td', { colspan: ncols },
        `... ${ld.dropped} message(s) not kept ...`)));
    const peer = laneOf(m.remote);
    const from = m.dir === 'in' ? peer : us, to = m.dir === 'in' ? us : peer;
    const a = Math.min(from, to), b = Math.max(from, to);
    const cells = [el('td', { class: 'when', title: fmtMs(m.t, true) },
      fmtMs(m.t), el('span', { class: 'sub' }, `+${Number(m.t) - t0} ms`))];
    for (let c = 0; c < a; c++) cells.push(el('td', { class: 'life' }));
    cells.push(el('td', { colspan: b - a + 1, class: `span-${b - a + 1}` },
      el('div', { class: `arrow ${to > from ? 'right' : 'left'} ${arrowClass(m)}`,
        title: `${m.dir === 'in' ? `${m.remote} -> ${m.local}` : `${m.local} -> ${m.remote}`} (${str(m.proto)})` },
      el('span', { class: 'label' }, str(m.first_line)),
      el('div', { class: 'line' }))));
    for (let c = b + 1; c < lanes.length; c++) cells.push(el('td', { class: 'life' }));
    const method = /^SIP\/2\.0 /.test(m.first_line) ? null : str(m.first_line).split(' ')[0];
    const tr = el('tr', { class: ladderState.open === i ? 'msg open' : 'msg', 'data-index': i,
      'data-dir': m.dir, 'data-remote': m.remote, 'data-method': method,
      'data-status': method ? null : str(m.first_line).split(' ')[1], tabindex: 0 }, cells);
    const toggle = () => {
      ladderState.open = ladderState.open === i ? null : i;
      renderLadder(ld);
    };
    tr.addEventListener('click', toggle);
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') toggle(); });
    body.push(tr);
    if (ladderState.open === i) body.push(messageDetail(m, ncols));
  });
  $('ladder-table').replaceChildren(el('thead', {}, head), el('tbody', {}, body));
}

function closeLadder() {
  Object.assign(ladderState, { callId: null, count: -1, open: null, listKey: '' });
  $('ladder-view').hidden = true;
  for (const tr of $('ladders-body').children) tr.classList.remove('selected');
}

/* Polling */

const sections = [
  { path: '/api/status', render: renderStatus, error: null },
  { path: '/api/alarms', render: renderAlarms, error: 'alarms-error', list: true },
  { path: '/api/registrations', render: renderRegistrations, error: 'regs-error', list: true },
  { path: '/api/calls', render: renderCalls, error: 'calls-error', list: true },
  { path: '/api/ladders', render: renderLadders, error: 'ladders-error', list: true },
];

let busy = false;

async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const results = await Promise.allSettled(sections.map((s) => getJSON(s.path)));
    let failed = 0;
    results.forEach((res, i) => {
      const s = sections[i];
      let err = res.status === 'rejected' ? res.reason : null;
      if (!err) {
        try {
          if (s.list && !Array.isArray(res.value)) throw new Error(`${s.path}: not a list`);
          s.render(res.value);
        } catch (e) {
          err = e;
        }
      }
      if (err) failed++;
      if (s.error) showError(s.error, err);
    });
    const conn = $('conn');
    conn.dataset.state = failed ? 'error' : 'ok';
    conn.textContent = failed === sections.length ? 'daemon not answering'
      : failed ? `${failed} endpoint(s) failing` : 'live';
    if (failed < sections.length)
      $('last-update').textContent = `Last update ${fmtTime(Date.now() / 1000)}.`;
  } finally {
    busy = false;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('refresh-s').textContent = String(REFRESH_MS / 1000);
  $('ladders-all').addEventListener('change', () => { ladderState.listKey = ''; refresh(); });
  $('ladder-close').addEventListener('click', closeLadder);
  refresh();
  setInterval(refresh, REFRESH_MS);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
});
