/**
 * The dashboard page: one HTML document with its style and script inline
 * (no network but this server's), following /api/events. Text from the
 * swarm (worker status, failure reasons) is only ever set as textContent.
 * The Content-Security-Policy allows exactly this script and this style.
 */
import { createHash } from 'node:crypto'

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 0; background: #15181d; color: #dde1e6; }
header { padding: 12px 20px; background: #1d2128; border-bottom: 1px solid #2b3038; }
h1 { font-size: 18px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 18px 0 8px; color: #aab2bd; }
main { padding: 0 20px 20px; }
#summary { font-size: 16px; }
#link { color: #8a94a3; margin-left: 12px; font-size: 13px; }
.bar { height: 8px; background: #2b3038; border-radius: 4px; margin-top: 8px; overflow: hidden; }
.bar div { height: 100%; background: #3f9e4d; width: 0; }
#grid { display: flex; flex-wrap: wrap; gap: 3px; }
.cell { width: 16px; height: 16px; border-radius: 3px; background: #3a3f47; cursor: default; }
.cell[data-state=q] { background: #2f6690; }
.cell[data-state=r] { background: #f0a202; }
.cell[data-state=d] { background: #3f9e4d; cursor: pointer; }
.cell[data-state=t] { background: #2d6e38; cursor: pointer; }
.cell[data-state=f] { background: #d7263d; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; color: #aab2bd; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 4px 14px 4px 0; border-bottom: 1px solid #2b3038; }
td.mono { font-family: ui-monospace, monospace; font-size: 12px; }
.gone { color: #6b7380; }
#thumbs { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; cursor: pointer; }
figure img, .placeholder { width: 160px; display: block; border-radius: 3px; background: #2b3038; }
.placeholder { height: 90px; line-height: 90px; text-align: center; color: #8a94a3; }
figcaption { font-size: 12px; color: #aab2bd; }
#failures li { color: #f08a96; }
#detail { position: fixed; inset: 0; background: rgba(0,0,0,.85); display: none; overflow: auto; padding: 20px; }
#detail.open { display: block; }
#detail img { max-width: 100%; image-rendering: pixelated; }
#detail pre { background: #0d0f12; padding: 10px; max-height: 40vh; overflow: auto; font-size: 12px; white-space: pre-wrap; }
#detail button { float: right; }
`

const SCRIPT = `
(function () {
  'use strict';
  var LABEL = { w: 'waiting', q: 'queued', r: 'rendering', d: 'done', t: 'already there', f: 'failed' };
  var job = null;
  var cells = new Map();
  var thumbs = [];
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function duration(ms) {
    var s = Math.round(ms / 1000);
    if (s < 60) return s + 's';
    var m = Math.floor(s / 60);
    if (m < 60) return m + 'm' + String(s % 60).padStart(2, '0') + 's';
    return Math.floor(m / 60) + 'h' + String(m % 60).padStart(2, '0') + 'm';
  }
  function short(peer) { return '\\u2026' + peer.slice(-6); }
  function finished(letter) { return letter === 'd' || letter === 't'; }

  function buildGrid(state) {
    job = state.job;
    $('title').textContent = 'blendnet \\u00b7 job ' + job.jobId;
    $('scene').textContent = 'scene "' + job.scene + '", ' + job.frames.length + ' frames, ' + job.format;
    var grid = $('grid');
    grid.replaceChildren();
    $('thumbs').replaceChildren();
    cells.clear();
    thumbs = [];
    job.frames.forEach(function (frame, i) {
      var cell = el('div', 'cell');
      cell.dataset.frame = String(frame);
      cell.addEventListener('click', function () { if (finished(cell.dataset.state)) openDetail(frame); });
      grid.appendChild(cell);
      cells.set(frame, cell);
      setState(frame, state.grid[i]);
    });
  }

  function setState(frame, letter) {
    var cell = cells.get(frame);
    if (!cell) return;
    cell.dataset.state = letter;
    cell.title = 'frame ' + frame + ': ' + LABEL[letter];
    if (finished(letter)) addThumb(frame);
  }

  function addThumb(frame) {
    if (thumbs.indexOf(frame) !== -1) return;
    var fig = el('figure');
    fig.dataset.frame = String(frame);
    if (job.preview === 'none') {
      fig.appendChild(el('div', 'placeholder', job.format));
    } else {
      var img = el('img');
      img.loading = 'lazy';
      img.alt = 'frame ' + frame;
      img.src = (job.preview === 'png' ? '/thumbs/' : '/frames/') + frame;
      fig.appendChild(img);
    }
    fig.appendChild(el('figcaption', '', 'frame ' + frame));
    fig.addEventListener('click', function () { openDetail(frame); });
    var at = 0;
    while (at < thumbs.length && thumbs[at] < frame) at++;
    thumbs.splice(at, 0, frame);
    var box = $('thumbs');
    box.insertBefore(fig, box.children[at] || null);
  }

  function showLive(live) {
    var s = live.summary;
    var parts = [s.done + ' / ' + s.total + ' frames done'];
    if (s.alreadyThere > 0) parts.push(s.alreadyThere + ' already there');
    if (s.failed > 0) parts.push(s.failed + ' failed');
    if (s.finished) parts.push(s.finished.succeeded ? 'finished' : 'stopped');
    else parts.push(s.etaMs === undefined || s.etaMs === null ? 'ETA after the first frame' : 'ETA ' + duration(s.etaMs));
    parts.push(duration(s.elapsedMs) + ' elapsed');
    $('summary').textContent = parts.join(' \\u00b7 ');
    $('done').textContent = String(s.done);
    $('progress').style.width = (s.total === 0 ? 100 : 100 * s.done / s.total) + '%';
    showWorkers(live.workers);
    showFailures(live.failures);
  }

  function showWorkers(workers) {
    var body = $('workers');
    body.replaceChildren();
    if (workers.length === 0) {
      var none = el('tr');
      none.appendChild(el('td', '', 'no worker yet'));
      body.appendChild(none);
    }
    workers.forEach(function (w) {
      var row = el('tr', w.present ? '' : 'gone');
      var peer = el('td', 'mono', short(w.peer));
      peer.title = w.peer;
      row.appendChild(peer);
      row.appendChild(el('td', '', w.blender || '?'));
      row.appendChild(el('td', '', w.chunk === undefined || w.chunk === null ? (w.present ? 'idle' : 'left') : 'chunk ' + w.chunk));
      var p = w.progress;
      row.appendChild(el('td', '', p ? 'frame ' + p.frame + ': ' + p.status : ''));
      row.appendChild(el('td', '', w.framesDone));
      row.appendChild(el('td', '', w.secondsPerFrame === undefined || w.secondsPerFrame === null ? '' : w.secondsPerFrame.toFixed(1) + ' s/frame'));
      body.appendChild(row);
    });
  }

  function showFailures(failures) {
    var list = $('failures');
    list.replaceChildren();
    failures.slice().reverse().forEach(function (f) {
      var what = (f.frames.length === 1 ? 'frame ' : 'frames ') + f.frames.join(',');
      list.appendChild(el('li', '', what + ' on ' + short(f.worker) + ': ' + f.reason + (f.final ? ' (given up)' : ' (retried)')));
    });
  }

  function openDetail(frame) {
    $('detail-title').textContent = 'frame ' + frame;
    var box = $('detail-image');
    box.replaceChildren();
    if (job.preview === 'none') {
      var a = el('a', '', 'download frame ' + frame + ' (' + job.format + ')');
      a.href = '/frames/' + frame;
      box.appendChild(a);
    } else {
      var img = el('img');
      img.src = '/frames/' + frame;
      img.alt = 'frame ' + frame;
      box.appendChild(img);
    }
    var log = $('detail-log');
    log.textContent = 'loading Blender\\u2019s log\\u2026';
    fetch('/logs/' + frame).then(function (r) { return r.text(); })
      .then(function (t) { log.textContent = t; }, function () { log.textContent = 'no log'; });
    $('detail').classList.add('open');
  }

  $('close').addEventListener('click', function () { $('detail').classList.remove('open'); });
  var events = new EventSource('/api/events');
  events.addEventListener('state', function (e) {
    var state = JSON.parse(e.data);
    buildGrid(state);
    showLive(state);
    $('link').textContent = 'live';
  });
  events.addEventListener('update', function (e) {
    var update = JSON.parse(e.data);
    update.changes.forEach(function (c) { setState(c[0], c[1]); });
    showLive(update);
  });
  events.addEventListener('error', function () {
    $('link').textContent = 'not connected (submit has ended, or is starting again)';
  });
})();
`

const LEGEND = Object.entries({ w: 'waiting', q: 'queued', r: 'rendering', d: 'done', t: 'already there', f: 'failed' })
  .map(([letter, label]) => `<span><i class="cell" data-state="${letter}"></i>${label}</span>`).join('')

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>blendnet dashboard</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1 id="title">blendnet</h1>
<div id="scene"></div>
<div><span id="summary">connecting…</span><span id="link"></span></div>
<div class="bar"><div id="progress"></div></div>
</header>
<main>
<h2>Frames (<span id="done">0</span> done)</h2>
<div class="legend">${LEGEND}</div>
<div id="grid"></div>
<h2>Workers</h2>
<table><thead><tr><th>peer</th><th>Blender</th><th>chunk</th><th>Blender's progress</th><th>frames done</th><th>speed</th></tr></thead>
<tbody id="workers"></tbody></table>
<h2>Failures</h2>
<ul id="failures"></ul>
<h2>Finished frames</h2>
<div id="thumbs"></div>
</main>
<div id="detail"><button id="close">close</button><h2 id="detail-title"></h2>
<div id="detail-image"></div><h2>Blender's log</h2><pre id="detail-log"></pre></div>
<script>${SCRIPT}</script>
</body>
</html>
`

function sha256 (text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`
}

export const PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')
