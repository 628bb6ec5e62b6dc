// stagebox dashboard: one WebSocket to the box (/api/live), no libraries, no build step.
// The box pushes {type:"status", status:{…}} about once a second and
// {type:"levels", peakDb:[…]} about ten times a second.
(function () {
  'use strict';

  var METER_MIN_DB = -60; // left end of a meter
  var HOLD_MS = 1500; // peak-hold marker
  var STALE_MS = 1500; // no levels for this long: meters dim
  var $ = function (id) { return document.getElementById(id); };

  var thresholds = { amber: 20, red: 50 };
  var meters = []; // {el, label, cover, hold, db, holdDb, holdAt}
  var channelInfo = {}; // ch -> {name, color} from the engineer's metadata (status.metadata)
  var channelInfoKey = '';
  var lastLevelsAt = 0;
  var retryMs = 1000;

  // ---- helpers --------------------------------------------------------------

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text); // never innerHTML: names come from phones
    return e;
  }
  function set(id, text) {
    var e = $(id);
    if (e) e.textContent = text === undefined || text === null || text === '' ? '—' : String(text);
  }
  function num(x, digits) {
    return typeof x === 'number' && isFinite(x) ? x.toFixed(digits) : null;
  }
  function ms(x) {
    if (typeof x !== 'number' || !isFinite(x)) return null;
    return (x < 10 ? x.toFixed(1) : String(Math.round(x))) + ' ms';
  }
  function duration(s) {
    if (typeof s !== 'number') return null;
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return h > 0 ? h + 'h ' + m + 'm' : m > 0 ? m + 'm ' + sec + 's' : sec + 's';
  }
  function pick(obj, path) {
    var v = obj;
    for (var i = 0; i < path.length; i++) {
      if (v === null || typeof v !== 'object') return undefined;
      v = v[path[i]];
    }
    return v;
  }
  /** green / amber / red against the box's thresholds; "unknown" before the first ping. */
  function latencyLevel(rtt) {
    if (typeof rtt !== 'number') return 'unknown';
    return rtt >= thresholds.red ? 'red' : rtt >= thresholds.amber ? 'amber' : 'green';
  }

  // ---- meters ---------------------------------------------------------------

  function buildMeters(n) {
    var box = $('meters');
    box.textContent = '';
    meters = [];
    for (var c = 0; c < n; c++) {
      var m = el('div', 'meter');
      m.setAttribute('role', 'meter');
      m.setAttribute('aria-valuemin', String(METER_MIN_DB));
      m.setAttribute('aria-valuemax', '0');
      m.dataset.channel = String(c);
      m.dataset.peakDb = '';
      var bar = el('div', 'bar');
      var cover = el('div', 'cover');
      var hold = el('div', 'hold');
      bar.appendChild(cover);
      bar.appendChild(hold);
      var db = el('span', 'db', '—');
      var label = el('span', 'ch');
      m.appendChild(label);
      m.appendChild(bar);
      m.appendChild(db);
      box.appendChild(m);
      meters.push({ el: m, label: label, cover: cover, hold: hold, db: db, holdDb: -Infinity, holdAt: 0 });
    }
    labelMeters();
  }

  // Channel names and colours the engineer set (metadata), so "Kick" reads
  // faster than "1" from across a stage.
  function labelMeters() {
    for (var c = 0; c < meters.length; c++) {
      var info = channelInfo[c] || {};
      var m = meters[c];
      m.label.textContent = info.name ? c + 1 + ' ' + info.name : String(c + 1);
      m.label.title = info.name ? 'Channel ' + (c + 1) + ': ' + info.name : 'Channel ' + (c + 1);
      m.label.style.borderRightColor = info.color || 'transparent';
      m.el.dataset.name = info.name || '';
      m.el.setAttribute('aria-label', 'Channel ' + (c + 1) + (info.name ? ' (' + info.name + ')' : '') + ' peak level');
    }
  }

  function showChannelInfo(md) {
    var list = md && Array.isArray(md.channels) ? md.channels : [];
    var key = JSON.stringify(list);
    if (key === channelInfoKey) return;
    channelInfoKey = key;
    channelInfo = {};
    for (var i = 0; i < list.length; i++) {
      var ch = list[i];
      if (ch && typeof ch.ch === 'number') channelInfo[ch.ch] = { name: typeof ch.name === 'string' ? ch.name : '', color: typeof ch.color === 'string' && /^#[0-9a-fA-F]{6}$/.test(ch.color) ? ch.color : '' };
    }
    labelMeters();
  }

  function frac(db) {
    return Math.max(0, Math.min(1, (db - METER_MIN_DB) / -METER_MIN_DB));
  }

  function showLevels(peaks) {
    var now = Date.now();
    lastLevelsAt = now;
    var box = $('meters');
    box.classList.remove('stale');
    box.dataset.updates = String((Number(box.dataset.updates) || 0) + 1);
    if (peaks.length !== meters.length) buildMeters(peaks.length);
    for (var c = 0; c < peaks.length; c++) {
      var m = meters[c], v = peaks[c];
      if (typeof v !== 'number') {
        m.el.dataset.peakDb = '';
        m.el.removeAttribute('aria-valuenow');
        m.db.textContent = '—';
        m.cover.style.transform = 'scaleX(1)';
        continue;
      }
      m.el.dataset.peakDb = v.toFixed(1);
      m.el.setAttribute('aria-valuenow', v.toFixed(1));
      m.db.textContent = v <= -100 ? '−∞' : v.toFixed(1);
      m.cover.style.transform = 'scaleX(' + (1 - frac(v)).toFixed(3) + ')';
      if (v >= m.holdDb || now - m.holdAt > HOLD_MS) {
        m.holdDb = v;
        m.holdAt = now;
        m.hold.style.left = 'calc(' + (frac(v) * 100).toFixed(1) + '% - 2px)';
      }
    }
  }

  // ---- status ---------------------------------------------------------------

  function showStatus(s) {
    var d = s.dashboard || {};
    if (typeof d.latencyAmberMs === 'number') thresholds.amber = d.latencyAmberMs;
    if (typeof d.latencyRedMs === 'number') thresholds.red = d.latencyRedMs;
    set('amber-ms', thresholds.amber);
    set('red-ms', thresholds.red);
    set('version', s.version ? 'v' + s.version : null);
    set('uptime', duration(s.uptimeS));

    var cap = s.capture || {};
    var st = $('capture-state');
    st.textContent = cap.state || '—';
    st.dataset.state = cap.state || '';
    set('capture-device', cap.device);
    set('capture-kind', cap.kind);
    var f = cap.format;
    set('capture-format', f ? f.channels + ' ch · ' + f.rate / 1000 + ' kHz · ' + f.format + ' · ' + f.periodFrames + ' frames' : null);
    set('capture-xruns', cap.xruns);
    set('capture-reopens', cap.reopenCount);
    set('capture-error', cap.lastError || 'none');
    if (f && meters.length !== f.channels) buildMeters(f.channels);
    showChannelInfo(s.metadata);

    showClients(Array.isArray(s.clients) ? s.clients : []);

    var p = s.pool || {};
    set('pool-size', p.size === 0 ? '0 (main thread only)' : p.size);
    set('pool-load', typeof p.utilization === 'number' ? Math.round(p.utilization * 100) + ' %' : null);
    set('pool-periods', p.inlinePeriods !== undefined ? p.inlinePeriods + ' / ' + p.pooledPeriods : null);
    set('pool-outputs', p.outputs !== undefined ? p.outputs + ' / ' + p.mixes : null);
    set('pool-misses', p.deadlineMisses);
    set('pool-skipped', p.skippedPeriods);
    set('server-p99', ms(pick(s, ['perf', 'serverLatency', 'p99Ms'])));
    var drops = 0;
    (s.clients || []).forEach(function (c) { drops += c.drops || 0; });
    set('drops', drops);

    // system.* comes from the system collector when the box has one; "—" otherwise.
    var load = num(pick(s, ['system', 'cpu', 'loadPct']), 0);
    set('sys-cpu', load !== null ? load + ' %' : null);
    var temp = num(pick(s, ['system', 'cpu', 'tempC']), 1);
    set('sys-temp', temp !== null ? temp + ' °C' : null);
    var mem = num(pick(s, ['system', 'mem', 'usedPct']), 0);
    set('sys-mem', mem !== null ? mem + ' % used' : null);
    var pr = s.process || {};
    var pcpu = num(pr.cpuPct, 1);
    set('proc-cpu', pcpu !== null ? pcpu + ' % of a core · ' + pr.rssMB + ' MB' : null);
    set('proc-load', typeof pr.loadAvg1m === 'number' ? pr.loadAvg1m.toFixed(2) + ' (' + pr.cores + ' cores)' : null);

    showEvents(Array.isArray(s.events) ? s.events : []);
    showRecording(s.recording || null, s.playback || null);
  }

  function showClients(list) {
    var ul = $('clients');
    ul.textContent = '';
    set('client-count', list.length);
    $('no-clients').hidden = list.length > 0;
    list.forEach(function (c) {
      var level = latencyLevel(c.rttMs);
      var li = el('li', 'client');
      li.dataset.clientId = c.clientId === null ? '' : c.clientId;
      li.dataset.latencyLevel = level;
      li.dataset.rttMs = typeof c.rttMs === 'number' ? String(c.rttMs) : '';
      var head = el('div', 'head');
      var dot = el('span', 'dot');
      dot.dataset.level = level;
      dot.setAttribute('aria-hidden', 'true');
      head.appendChild(dot);
      head.appendChild(el('span', 'name', c.name || c.clientId || '(no hello yet)'));
      var lat = el('span', 'lat', ms(c.rttMs) || '—');
      lat.setAttribute('aria-label', 'latency ' + (ms(c.rttMs) || 'not measured yet') + ', ' + level);
      lat.title = 'round trip of the box\'s ping: ' + level;
      head.appendChild(lat);
      li.appendChild(head);
      var parts = [];
      if (c.name && c.clientId) parts.push(c.clientId);
      parts.push(c.address);
      if (c.mode === 'mix') parts.push('mix' + (c.codec ? ' ' + c.codec : ''));
      else if (c.mode === 'channels') parts.push(c.codec + ' · ch ' + c.channels.map(function (x) { return x + 1; }).join(','));
      else parts.push('not subscribed');
      if (c.transport) parts.push(c.transport.now === c.transport.asked ? c.transport.now : c.transport.now + ' (asked ' + c.transport.asked + ')');
      if (typeof c.playbackBufferMs === 'number') parts.push('buffer ' + ms(c.playbackBufferMs));
      if (typeof c.underruns === 'number') parts.push(c.underruns + ' underruns');
      if (typeof c.recovered === 'number') parts.push(c.recovered + ' recovered');
      if (typeof c.concealed === 'number') parts.push(c.concealed + ' concealed');
      parts.push(c.drops + ' drops');
      if (c.queued) parts.push(c.queued + ' queued');
      parts.push(duration(c.connectedS));
      li.appendChild(el('div', 'detail', parts.join(' · ')));
      ul.appendChild(li);
    });
  }

  var shownEventSeq = -1;
  function showEvents(events) {
    var last = events.length ? events[events.length - 1].seq : 0;
    if (last === shownEventSeq) return;
    shownEventSeq = last;
    var ol = $('events');
    ol.textContent = '';
    for (var i = events.length - 1; i >= 0; i--) {
      var e = events[i];
      var li = el('li');
      li.dataset.kind = e.kind;
      var t = el('time', null, new Date(e.at).toLocaleTimeString());
      t.dateTime = new Date(e.at).toISOString();
      li.appendChild(t);
      li.appendChild(el('span', 'kind', e.kind));
      var fields = [];
      for (var k in e.fields) {
        var v = e.fields[k];
        // Zero counts, false flags and empty values are noise on a phone screen; the status JSON has them all.
        if (v !== null && v !== '' && v !== 0 && v !== false) fields.push(k + '=' + v);
      }
      li.appendChild(el('span', 'fields', fields.join(' ')));
      ol.appendChild(li);
    }
  }

  // ---- recording and virtual soundcheck -------------------------------------
  // State comes with every status push; actions and the take list need the
  // admin token (HTTP, Authorization: Bearer), kept for this tab only.

  var TOKEN_KEY = 'stagebox-admin-token';
  var token = null;
  try { token = sessionStorage.getItem(TOKEN_KEY); } catch (e) { token = null; }
  var takesTimer = null;
  var seeking = false;
  var lastPlayback = null;

  function clock(s) {
    if (typeof s !== 'number' || !isFinite(s)) return '—';
    s = Math.floor(s);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h > 0 ? h + ':' + String(m).padStart(2, '0') : String(m)) + ':' + String(sec).padStart(2, '0');
  }
  function bytes(b) {
    if (typeof b !== 'number') return null;
    return b >= 1e9 ? (b / 1e9).toFixed(1) + ' GB' : (b / 1e6).toFixed(0) + ' MB';
  }
  function message(text, level) {
    var m = $('rec-msg');
    m.textContent = text || '';
    m.dataset.level = level || '';
  }

  /** One call of the recording API; resolves with the JSON answer, rejects with its error text. */
  function call(method, path, body) {
    var init = { method: method, headers: { authorization: 'Bearer ' + token } };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (j) {
        if (res.ok) return j;
        if (res.status === 401 || res.status === 403) lock();
        throw new Error(j.error || 'HTTP ' + res.status);
      });
    });
  }
  function act(method, path, body, done) {
    message('…');
    return call(method, path, body).then(function (j) {
      message(done ? done(j) : '');
      loadTakes();
      return j;
    }, function (err) {
      message(err.message, 'error');
    });
  }

  function lock() {
    token = null;
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ }
    $('rec-controls').hidden = true;
    $('rec-unlock').hidden = false;
    $('pb-controls').hidden = true;
    if (takesTimer) clearInterval(takesTimer);
    takesTimer = null;
  }
  function unlocked() {
    $('rec-controls').hidden = false;
    $('rec-unlock').hidden = true;
    $('pb-controls').hidden = false;
    loadTakes();
    if (!takesTimer) takesTimer = setInterval(loadTakes, 15000);
  }

  function showRecording(r, pb) {
    if (r) {
      var st = $('rec-state');
      st.textContent = r.state === 'recording' ? '● REC' : r.state;
      st.dataset.state = r.state;
      $('rec-elapsed').textContent = r.take ? clock(r.take.seconds) : '—';
      $('rec-take').textContent = r.take ? r.take.name || r.take.id : '';
      set('rec-drive', r.drive ? r.drive.mount + ' (' + r.drive.kind + (r.drive.fsType ? ', ' + r.drive.fsType : '') + ')' : 'none');
      set('rec-free', bytes(r.freeBytes));
      set('rec-left', typeof r.secondsLeft === 'number' ? duration(r.secondsLeft) + (r.take ? ' at this rate' : ' with every input') : null);
      var last = r.last;
      set('rec-last', last ? last.id + ' · ' + clock(last.seconds) + ' · ' + last.reason + (last.error ? ': ' + last.error : '') : null);
      $('rec-start').disabled = r.state !== 'idle' || !!(pb && pb.active);
      $('rec-stop').disabled = r.state !== 'recording';
      $('rec-marker').disabled = r.state !== 'recording';
    }
    showPlayback(pb);
  }

  function showPlayback(pb) {
    lastPlayback = pb;
    var on = !!(pb && pb.active);
    $('playback-banner').hidden = !on;
    if (!on) return;
    $('pb-take').textContent = pb.take;
    var st = $('pb-state');
    st.textContent = pb.state;
    st.dataset.state = pb.state;
    $('pb-pos').textContent = clock(pb.positionS) + ' / ' + clock(pb.durationS) + (pb.loop ? ' · loop ' + clock(pb.loop.startS) + '–' + clock(pb.loop.endS) : '');
    $('pb-toggle').textContent = pb.state === 'playing' ? 'Pause' : 'Play';
    var seek = $('pb-seek');
    seek.max = String(pb.durationS || 1);
    if (!seeking) seek.value = String(pb.positionS || 0);
    $('pb-loop').checked = !!pb.loop;
  }

  function loadTakes() {
    if (!token) return;
    call('GET', '/api/recordings').then(function (j) {
      showTakes(Array.isArray(j.takes) ? j.takes : []);
      showRecording(j.recording, j.playback);
    }, function (err) {
      message(err.message, 'error');
    });
  }

  function showTakes(list) {
    var ul = $('takes');
    ul.textContent = '';
    $('no-takes').hidden = list.length > 0;
    list.forEach(function (t) {
      var li = el('li', 'take');
      li.dataset.takeId = t.id;
      li.dataset.state = t.state;
      li.appendChild(el('div', 'name', t.name || t.id));
      var parts = [t.id, clock(t.seconds), t.state];
      if (t.channels && t.channels.length) parts.push(t.channels.length + ' input(s)');
      var marks = (t.markers || []).filter(function (m) { return m.kind === 'marker'; }).length;
      var dropouts = (t.markers || []).length - marks;
      if (marks) parts.push(marks + ' marker(s)');
      if (dropouts) parts.push(dropouts + ' capture dropout(s)');
      if (t.error || t.damaged) parts.push(t.error || t.damaged);
      li.appendChild(el('div', 'detail', parts.join(' · ')));
      var files = el('div', 'files');
      (t.files || []).forEach(function (f) {
        var a = el('a', null, f.name);
        a.href = f.link;
        a.setAttribute('download', f.name);
        files.appendChild(a);
      });
      li.appendChild(files);
      var row = el('div', 'row');
      var play = el('button', null, '▶ Play as the stage');
      play.type = 'button';
      play.disabled = t.state === 'damaged' || t.state === 'recording';
      play.addEventListener('click', function () {
        act('POST', '/api/playback', { action: 'play', take: t.id }, function () { return 'playing ' + t.id + ' instead of the stage'; });
      });
      var del = el('button', null, 'Delete');
      del.type = 'button';
      del.disabled = t.state === 'recording';
      del.addEventListener('click', function () {
        if (!window.confirm('Delete take ' + t.id + ' and its files?')) return;
        act('DELETE', '/api/recordings/' + encodeURIComponent(t.id), undefined, function () { return 'deleted ' + t.id; });
      });
      row.appendChild(play);
      row.appendChild(del);
      li.appendChild(row);
      ul.appendChild(li);
    });
  }

  $('rec-unlock-btn').addEventListener('click', function () {
    token = $('rec-token').value;
    $('rec-token').value = '';
    call('GET', '/api/recordings').then(function (j) {
      try { sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* private mode: this page only */ }
      message('');
      unlocked();
      showTakes(j.takes || []);
    }, function (err) {
      token = null;
      message(err.message, 'error');
    });
  });
  $('rec-start').addEventListener('click', function () {
    var name = $('rec-name').value.trim();
    act('POST', '/api/recordings', name ? { name: name } : {}, function (j) { return 'recording ' + j.take.id + ' to ' + j.take.drive; });
  });
  $('rec-stop').addEventListener('click', function () {
    act('POST', '/api/recordings/stop', undefined, function (j) { return 'stopped: ' + j.take.id + ', ' + clock(j.take.seconds); });
  });
  $('rec-marker').addEventListener('click', function () {
    act('POST', '/api/recordings/markers', {}, function (j) { return j.marker.label + ' at ' + clock(j.marker.seconds); });
  });
  $('pb-toggle').addEventListener('click', function () {
    var playing = lastPlayback && lastPlayback.state === 'playing';
    act('POST', '/api/playback', { action: playing ? 'pause' : 'play' });
  });
  $('pb-seek').addEventListener('input', function () { seeking = true; });
  $('pb-seek').addEventListener('change', function () {
    seeking = false;
    act('POST', '/api/playback', { action: 'seek', positionS: Number($('pb-seek').value) });
  });
  $('pb-loop').addEventListener('change', function () {
    act('POST', '/api/playback', { action: 'loop', loop: $('pb-loop').checked });
  });
  $('pb-live').addEventListener('click', function () {
    act('POST', '/api/playback', { action: 'live' }, function () { return 'back to live'; });
  });
  if (token) unlocked();

  // ---- connection -----------------------------------------------------------

  function setConn(state, text) {
    var b = $('conn');
    b.dataset.state = state;
    b.textContent = text;
  }

  function connect() {
    var ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/live');
    ws.onopen = function () {
      retryMs = 1000;
      setConn('live', 'live');
    };
    ws.onmessage = function (ev) {
      var msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (msg.type === 'levels') showLevels(msg.peakDb);
      else if (msg.type === 'status') showStatus(msg.status);
    };
    ws.onclose = function (ev) {
      var wait = ev.code === 1013 ? 10000 : retryMs;
      retryMs = Math.min(retryMs * 2, 8000);
      setConn('offline', ev.code === 1013 ? 'too many dashboards open; retrying' : 'offline; reconnecting');
      setTimeout(connect, wait);
    };
  }

  setInterval(function () {
    if (lastLevelsAt && Date.now() - lastLevelsAt > STALE_MS) $('meters').classList.add('stale');
  }, 500);

  // The listener's address as this browser reaches the box; the QR code (made by the box) encodes the same.
  (function () {
    var url = location.protocol + '//' + location.host + '/listen/';
    var a = $('listen-link');
    a.href = url;
    a.textContent = url;
    $('listen-qr').dataset.url = url;
  })();
  connect();
})();
