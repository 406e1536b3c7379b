/* The sluice dashboard (served at /dashboard.js, loaded by index.html at /). Polls
 * /api/v1/status and /metrics every 2 s and shows connections and throughput per listener
 * over the last 5 minutes, latency percentiles computed from the histogram buckets, and
 * for http listeners requests/s and answers by status class, for http backends upstream
 * response percentiles and the pool of idle server connections, the routes of http
 * listeners (match, action, requests), the protocol mix of http listeners (requests by
 * HTTP/1.0, HTTP/1.1, HTTP/2: counts, shares and a bar; HTTP/2 streams open), and
 * the servers with buttons that call the PATCH API (the bearer token, if any, is kept in
 * sessionStorage). Vanilla JS, no external resources: the page's Content-Security-Policy
 * allows scripts, styles and fetches from this server only, so inline <script>, <style>
 * and style="" attributes are refused (set styles through element.style). */
'use strict';
const POLL_MS = 2000, HISTORY_MS = 5 * 60 * 1000, LATENCY_WINDOW_MS = 60 * 1000;
const COLORS = ['#2f6feb', '#e36209', '#1a7f37', '#8250df', '#bf3989', '#0a7ea4', '#9a6700', '#cf222e'];
const history = [];          /* {t, m} samples, oldest first */
let status = null;
let busy = false;            /* a PATCH or reload is in flight */

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'style') e.style.cssText = v;  /* CSSOM: allowed by the CSP */
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== false && v !== null && v !== undefined) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function fmtBytes(n) {
  if (n === null || n === undefined || isNaN(n)) return '-';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) : Math.round(n)) + ' ' + u[i];
}

function fmtNum(n) {
  if (n === null || n === undefined || isNaN(n)) return '-';
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  return Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 2 : 1);
}

function fmtSeconds(s) {
  if (s === null || s === undefined || isNaN(s)) return '-';
  if (s === Infinity) return '> 10 s';
  if (s < 0.001) return (s * 1e6).toFixed(0) + ' \u00b5s';
  if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 1) + ' ms';
  return s.toFixed(2) + ' s';
}

function fmtAgo(sec) {
  if (sec === null || sec === undefined) return '';
  if (sec < 60) return Math.round(sec) + ' s ago';
  if (sec < 3600) return Math.round(sec / 60) + ' min ago';
  return (sec / 3600).toFixed(1) + ' h ago';
}

function toast(text, isError) {
  const d = el('div', {class: isError ? 'err' : ''}, text);
  $('toast').append(d);
  setTimeout(() => d.remove(), isError ? 9000 : 4000);
}

/* Prometheus text format -> Map of "name{sorted labels}" -> {name, labels, value}. */
function parseMetrics(text) {
  const out = new Map();
  const lineRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = lineRe.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || '').matchAll(labelRe))
      labels[l[1]] = l[2].replace(/\\(["\\n])/g, (_, c) => (c === 'n' ? '\n' : c));
    const value = m[3] === '+Inf' ? Infinity : Number(m[3]);
    out.set(m[1] + JSON.stringify(labels), {name: m[1], labels, value});
  }
  return out;
}

/* Sum of the samples of `name` whose labels include `match`. */
function metric(m, name, match) {
  let sum = 0;
  for (const s of m.values()) {
    if (s.name !== name) continue;
    if (Object.entries(match || {}).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

/* Cumulative buckets [[le, count], ...] of histogram `name` for one label. */
function buckets(m, name, key, value) {
  const b = [];
  for (const s of m.values())
    if (s.name === name + '_bucket' && s.labels[key] === value)
      b.push([s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value]);
  return b.sort((x, y) => x[0] - y[0]);
}

/* Like Prometheus' histogram_quantile: linear interpolation inside the bucket. */
function quantile(q, b) {
  if (!b.length) return null;
  const total = b[b.length - 1][1];
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0, prevCount = 0;
  for (const [le, count] of b) {
    if (count >= rank) {
      if (le === Infinity) return prevLe > 0 ? Infinity : null;
      const inBucket = count - prevCount;
      return prevLe + (le - prevLe) * (inBucket > 0 ? (rank - prevCount) / inBucket : 1);
    }
    prevLe = le;
    prevCount = count;
  }
  return null;
}

function sampleAgo(ms) {
  const target = performance.now() - ms;
  let pick = history[0];
  for (const h of history) if (h.t <= target) pick = h;
  return pick;
}

async function fetchJSON(url, opts) {
  const r = await fetch(url, Object.assign({cache: 'no-store'}, opts));
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  return {ok: r.ok, status: r.status, body};
}

async function poll() {
  try {
    const [st, mt] = await Promise.all([
      fetchJSON('/api/v1/status'),
      fetch('/metrics', {cache: 'no-store'}).then((r) => r.text()),
    ]);
    if (!st.ok || !st.body) throw new Error('status ' + st.status);
    status = st.body;
    history.push({t: performance.now(), m: parseMetrics(mt)});
    while (history.length > 2 && performance.now() - history[0].t > HISTORY_MS + POLL_MS) history.shift();
    setConn(true, 'live');
    render();
  } catch (e) {
    setConn(false, 'disconnected');
  }
}

function setConn(up, text) {
  $('conn').className = up ? 'up' : 'down';
  $('conn').lastChild.textContent = text;
}

function render() {
  const s = status;
  $('meta').textContent = 'v' + s.version + ' \u00b7 pid ' + s.pid + ' \u00b7 ' + s.workers +
    ' workers \u00b7 config generation ' + s.generation + ' \u00b7 ' + s.state;
  renderCards();
  renderCharts();
  renderLatency();
  renderListeners();
  renderHttp();
  if (!busy && !document.activeElement?.classList.contains('weight')) renderServers();
}

/* Pairs of samples at least MIN_RATE_MS apart (extra polls after a click are closer). */
const MIN_RATE_MS = 1000;
function ratePairs() {
  const pairs = [];
  let a = history[0];
  for (let i = 1; i < history.length; i++) {
    if (history[i].t - a.t < MIN_RATE_MS) continue;
    pairs.push([a, history[i]]);
    a = history[i];
  }
  return pairs;
}

function rate(name, match) {
  const b = history[history.length - 1];
  let a = null;
  for (let i = history.length - 2; i >= 0 && !a; i--)
    if (b.t - history[i].t >= MIN_RATE_MS) a = history[i];
  if (!a) return null;
  const dt = (b.t - a.t) / 1000;
  return Math.max(0, metric(b.m, name, match) - metric(a.m, name, match)) / dt;
}

function renderCards() {
  const s = status;
  $('c-active').textContent = fmtNum(s.active_connections);
  $('c-rate').textContent = fmtNum(rate('sluice_connections_total'));
  const rin = rate('sluice_bytes_received_total'), rout = rate('sluice_bytes_sent_total');
  $('c-in').textContent = rin === null ? '-' : fmtBytes(rin) + '/s';
  $('c-out').textContent = rout === null ? '-' : fmtBytes(rout) + '/s';
  let usable = 0, total = 0;
  for (const b of s.backends) for (const v of b.servers) { total++; if (v.usable) usable++; }
  $('c-servers').textContent = usable + ' / ' + total;
  $('c-reloads').textContent = s.reloads.success + ' / ' + s.reloads.failure;
}

/* Series of per-second rates for each listener: {name: [[t, v], ...]}. */
function listenerRates(names) {
  const series = {};
  for (const l of status.listeners) series[l.name] = [];
  for (const [a, b] of ratePairs()) {
    const dt = (b.t - a.t) / 1000;
    for (const l of status.listeners) {
      let v = 0;
      for (const n of names)
        v += Math.max(0, metric(b.m, n, {listener: l.name}) - metric(a.m, n, {listener: l.name}));
      series[l.name].push([b.t, v / dt]);
    }
  }
  return series;
}

/* A round grid step (1, 2 or 5 times a power of ten) giving at most 5 steps up to v. */
function niceStep(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v / 5)));
  for (const f of [1, 2, 5, 10]) if (v / (f * p) <= 5) return f * p;
  return 10 * p;
}

function drawChart(svg, legend, series, fmt) {
  const w = Math.max(svg.clientWidth, 300), h = svg.clientHeight || 200;
  const padL = 58, padR = 10, padT = 10, padB = 22;
  svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
  svg.replaceChildren();
  const now = performance.now();
  let max = 0;
  for (const pts of Object.values(series)) for (const [, v] of pts) max = Math.max(max, v);
  const step = niceStep(max);
  const steps = Math.max(1, Math.ceil(max / step - 1e-9));
  max = step * steps;
  const x = (t) => padL + (w - padL - padR) * (1 - (now - t) / HISTORY_MS);
  const y = (v) => padT + (h - padT - padB) * (1 - v / max);
  for (let i = 0; i <= steps; i++) {
    const v = step * i;
    svg.append(svgEl('line', {class: 'grid', x1: padL, x2: w - padR, y1: y(v), y2: y(v)}));
    const t = svgEl('text', {x: padL - 6, y: y(v) + 4, 'text-anchor': 'end'});
    t.textContent = fmt(v);
    svg.append(t);
  }
  for (let m = 0; m <= 5; m++) {
    const t = svgEl('text', {x: x(now - m * 60000), y: h - 6, 'text-anchor': m === 0 ? 'end' : 'middle'});
    t.textContent = m === 0 ? 'now' : '-' + m + 'm';
    svg.append(t);
  }
  svg.append(svgEl('line', {class: 'axis', x1: padL, x2: w - padR, y1: y(0), y2: y(0)}));
  legend.replaceChildren();
  Object.entries(series).forEach(([name, pts], i) => {
    const color = COLORS[i % COLORS.length];
    if (pts.length > 1) {
      const d = pts.filter(([t]) => now - t <= HISTORY_MS)
        .map(([t, v], k) => (k ? 'L' : 'M') + x(t).toFixed(1) + ' ' + y(v).toFixed(1)).join(' ');
      svg.append(svgEl('path', {d, fill: 'none', stroke: color, 'stroke-width': 2,
        'stroke-linejoin': 'round'}));
    }
    const last = pts.length ? pts[pts.length - 1][1] : null;
    legend.append(el('span', {}, el('i', {style: 'background:' + color}), name + ' ',
      el('b', {}, last === null ? '-' : fmt(last))));
  });
}

function renderCharts() {
  drawChart($('chart-conn'), $('legend-conn'), listenerRates(['sluice_connections_total']),
    (v) => fmtNum(Math.round(v * 100) / 100));
  drawChart($('chart-bytes'), $('legend-bytes'),
    listenerRates(['sluice_bytes_received_total', 'sluice_bytes_sent_total']), (v) => fmtBytes(v) + '/s');
}

/* Percentiles over the last minute (bucket deltas), or since start when it was quiet. */
function renderLatency() {
  const now = history[history.length - 1].m, then = sampleAgo(LATENCY_WINDOW_MS).m;
  const rows = [];
  const add = (what, metricName, key, name) => {
    const cur = buckets(now, metricName, key, name);
    const old = buckets(then, metricName, key, name);
    let b = cur.map(([le, c], i) => [le, c - (old[i] ? old[i][1] : 0)]);
    let scope = 'last minute';
    if (!b.length || b[b.length - 1][1] <= 0) { b = cur; scope = 'since start'; }
    const n = b.length ? b[b.length - 1][1] : 0;
    rows.push(el('tr', {}, el('td', {}, what), el('td', {}, name),
      el('td', {class: 'num'}, fmtSeconds(quantile(0.5, b))),
      el('td', {class: 'num'}, fmtSeconds(quantile(0.9, b))),
      el('td', {class: 'num'}, fmtSeconds(quantile(0.99, b))),
      el('td', {class: 'num'}, fmtNum(n) + ' ', el('span', {class: 'detail'}, scope))));
  };
  for (const b of status.backends) add('Connect time', 'sluice_backend_connect_duration_seconds', 'backend', b.name);
  for (const b of status.backends)
    if (b.http) add('Upstream response', 'sluice_upstream_response_seconds', 'backend', b.name);
  for (const l of status.listeners) add('Connection duration', 'sluice_connection_duration_seconds', 'listener', l.name);
  $('latency').tBodies[0].replaceChildren(...rows);
}

function renderListeners() {
  const rows = status.listeners.map((l) => el('tr', {},
    el('td', {}, l.name), el('td', {}, l.protocol + (l.tls_passthrough ? ' (passthrough)' : '')),
    el('td', {}, l.binds.join(', ')), el('td', {}, l.backend || '-'),
    el('td', {class: 'num'}, fmtNum(l.active_connections)),
    el('td', {class: 'num'}, fmtNum(l.connections_total)),
    el('td', {class: 'num'}, fmtNum(l.refused_total)),
    el('td', {class: 'num'}, fmtBytes(l.bytes_received)),
    el('td', {class: 'num'}, fmtBytes(l.bytes_sent))));
  $('listeners').tBodies[0].replaceChildren(...rows);
}

/* One line of text for a route's match conditions ("*" when it has none). */
function matchText(m) {
  const kv = (o) => Object.entries(o).map(([k, v]) => typeof v === 'string' ? k + '=' + v
    : 'regex' in v ? k + '~' + v.regex : (v.present ? k : '!' + k)).join(' ');
  const parts = [];
  for (const k of ['host', 'path', 'path_prefix', 'path_regex']) if (m[k]) parts.push(k + ' ' + m[k]);
  if (m.methods) parts.push(m.methods.join(','));
  if (m.headers) parts.push('headers ' + kv(m.headers));
  if (m.query) parts.push('query ' + kv(m.query));
  return parts.length ? parts.join(' \u00b7 ') : '*';
}

function actionText(r) {
  let t = r.action === 'backend' ? '\u2192 ' + r.backend
    : r.action === 'redirect' ? r.status + ' \u2192 ' + r.to : 'respond ' + r.status;
  const extra = ['rewrite', 'request_headers', 'response_headers'].filter((k) => r[k]);
  return extra.length ? t + ' (' + extra.join(', ') + ')' : t;
}

function renderRoutes(ls) {
  const rows = [];
  for (const l of ls) for (const r of l.http_routes || []) {
    rows.push(el('tr', {'data-route': l.name + '/' + r.index},
      el('td', {}, l.name),
      el('td', {class: 'num'}, String(r.index)),
      el('td', {'data-field': 'match'}, matchText(r.match)),
      el('td', {'data-field': 'action'}, actionText(r)),
      el('td', {class: 'num', 'data-field': 'requests'}, r.requests === null ? '-' : fmtNum(r.requests))));
  }
  $('http-routes').hidden = !rows.length;
  $('http-routes').tBodies[0].replaceChildren(...rows);
}

/* Requests by protocol per http listener: count and share of each, a bar of the shares
 * (in the chart colours), and the HTTP/2 streams open now. */
const PROTOCOLS = ['HTTP/1.0', 'HTTP/1.1', 'HTTP/2'];
function renderProtocols(ls) {
  $('http-protocols').hidden = !ls.length;
  $('http-protocols').tBodies[0].replaceChildren(...ls.map((l) => {
    const by = l.http.requests_by_protocol || {};
    const total = PROTOCOLS.reduce((n, p) => n + (by[p] || 0), 0);
    const share = (p) => (total ? Math.round(100 * (by[p] || 0) / total) + '%' : '-');
    const bar = el('div', {class: 'mix', 'data-field': 'mix',
      title: PROTOCOLS.map((p) => p + ' ' + fmtNum(by[p] || 0) + ' (' + share(p) + ')').join(', ')},
    ...PROTOCOLS.filter((p) => by[p] > 0).map((p) => el('i', {'data-protocol': p,
      style: 'width:' + (100 * by[p] / total).toFixed(2) + '%;background:' +
        COLORS[PROTOCOLS.indexOf(p)]})));
    return el('tr', {'data-listener': l.name},
      el('td', {}, l.name),
      ...PROTOCOLS.map((p, k) => el('td', {class: 'num', 'data-field': p},
        el('i', {class: 'swatch', style: 'background:' + COLORS[k]}),
        el('span', {class: 'count'}, fmtNum(by[p] || 0)),
        el('span', {class: 'detail share'}, share(p)))),
      el('td', {}, bar),
      el('td', {class: 'num', 'data-field': 'h2-streams'}, fmtNum(l.http.http2_streams_active)));
  }));
}

/* HTTP listeners and backends only (those with an `http` object in the status). */
function renderHttp() {
  const ls = status.listeners.filter((l) => l.http), bs = status.backends.filter((b) => b.http);
  $('http-section').hidden = !ls.length && !bs.length;
  const classes = ['1xx', '2xx', '3xx', '4xx', '5xx'];
  $('http-listeners').hidden = !ls.length;
  $('http-listeners').tBodies[0].replaceChildren(...ls.map((l) => el('tr', {'data-listener': l.name},
    el('td', {}, l.name),
    el('td', {class: 'num', 'data-field': 'rate'}, fmtNum(rate('sluice_requests_total', {listener: l.name}))),
    el('td', {class: 'num', 'data-field': 'active'}, fmtNum(l.http.requests_active)),
    el('td', {class: 'num', 'data-field': 'total'}, fmtNum(l.http.requests_total)),
    ...classes.map((c) => el('td', {class: 'num', 'data-field': c}, fmtNum(l.http.requests_by_class[c]))),
    el('td', {class: 'num', 'data-field': 'errors'}, fmtNum(l.http.errors_total)))));
  renderProtocols(ls);
  renderRoutes(ls);
  $('http-backends').hidden = !bs.length;
  $('http-backends').tBodies[0].replaceChildren(...bs.map((b) => el('tr', {'data-backend': b.name},
    el('td', {}, b.name),
    el('td', {class: 'num', 'data-field': 'responses'}, fmtNum(b.http.upstream_responses_total)),
    el('td', {class: 'num', 'data-field': 'idle'}, fmtNum(b.http.pool_idle)),
    el('td', {class: 'num', 'data-field': 'reused'}, fmtNum(b.http.pool_reused_total)),
    el('td', {class: 'num', 'data-field': 'reused-rate'},
      fmtNum(rate('sluice_backend_pool_reused_total', {backend: b.name}))))));
}

function stateBadge(v) {
  const cls = v.state === 'enabled' ? 'b-ok' : v.state === 'drain' ? 'b-warn' : 'b-off';
  let text = v.state;
  if (v.state === 'drain' && v.drain_ms_left > 0) text += ' (' + Math.ceil(v.drain_ms_left / 1000) + ' s)';
  return el('span', {class: 'badge state ' + cls, 'data-state': v.state}, text);
}

function healthCell(v) {
  const h = v.health;
  const badge = el('span', {class: 'badge health ' + (v.healthy ? 'b-ok' : 'b-bad')}, v.healthy ? 'up' : 'down');
  const detail = h.last_check + (h.last_change_seconds_ago !== null ? ' \u00b7 changed ' + fmtAgo(h.last_change_seconds_ago) : '');
  return el('td', {}, badge, ' ', el('span', {class: 'detail'}, detail));
}

function renderServers() {
  const rows = [];
  for (const b of status.backends) {
    rows.push(el('tr', {class: 'backend'}, el('td', {colspan: 8},
      b.name + ' ', el('span', {class: 'detail'}, b.protocol + ', ' + b.balance + ', ' +
        b.servers_usable + '/' + b.servers.length + ' usable, drain timeout ' + b.drain_timeout_ms / 1000 + ' s'))));
    for (const v of b.servers) {
      const weight = el('input', {class: 'weight', type: 'number', min: 0, max: 256, value: v.weight,
        title: 'configured: ' + v.config_weight, 'aria-label': 'weight of ' + v.address});
      weight.addEventListener('change', () => patch(b.name, v.address, {weight: Number(weight.value)}));
      const act = (label, state) => el('button', {disabled: v.state === state, 'data-action': state,
        onclick: () => patch(b.name, v.address, {state})}, label);
      rows.push(el('tr', {'data-server': b.name + '/' + v.address},
        el('td', {}, v.address, v.backup ? el('span', {class: 'detail'}, ' backup') : ''),
        el('td', {}, stateBadge(v)),
        healthCell(v),
        el('td', {class: 'num'}, weight),
        el('td', {class: 'num'}, fmtNum(v.active_connections)),
        el('td', {class: 'num'}, fmtNum(v.connections_total)),
        el('td', {class: 'num'}, fmtNum(v.connect_failures_total)),
        el('td', {}, el('div', {class: 'actions'}, act('Enable', 'enabled'), act('Drain', 'drain'),
          act('Disable', 'disabled')))));
    }
  }
  $('servers').tBodies[0].replaceChildren(...rows);
}

function authHeaders() {
  const t = $('token').value.trim();
  const h = {'Content-Type': 'application/json'};
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

// Runs one admin action: blocks polling meanwhile, reports a failed request, then
// refreshes the page's data.
async function act(work) {
  busy = true;
  try {
    await work();
  } catch (e) {
    toast('request failed: ' + e.message, true);
  } finally {
    busy = false;
    await poll();
  }
}

function failure(r) {
  return r.status + ' ' + (r.body && r.body.error ? r.body.error : 'failed');
}

function patch(backend, address, body) {
  return act(async () => {
    const url = '/api/v1/backends/' + encodeURIComponent(backend) + '/servers/' + encodeURIComponent(address);
    const r = await fetchJSON(url, {method: 'PATCH', headers: authHeaders(), body: JSON.stringify(body)});
    if (r.ok) toast(address + ': ' + Object.entries(body).map(([k, v]) => k + ' ' + v).join(', '));
    else toast(address + ': ' + failure(r), true);
  });
}

function reload() {
  return act(async () => {
    const r = await fetchJSON('/api/v1/reload', {method: 'POST', headers: authHeaders()});
    if (r.ok) toast('configuration reloaded (generation ' + r.body.generation + ')');
    else if (r.body && r.body.errors) toast('reload rejected, the running configuration is kept:\n' + r.body.errors.join('\n'), true);
    else toast('reload: ' + failure(r), true);
  });
}

$('token').value = sessionStorage.getItem('sluice-token') || '';
$('token').addEventListener('input', () => sessionStorage.setItem('sluice-token', $('token').value));
$('reload').addEventListener('click', reload);
window.addEventListener('resize', () => { if (status) renderCharts(); });
poll();
setInterval(poll, POLL_MS);
