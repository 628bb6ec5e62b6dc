// stagebox listener: a phone's browser as an in-ear monitor. The connection to the box is the client library's
// StageboxClient (hello, reconnect, ping, report, decoding: docs/protocol.md); deflate goes through
// DecompressionStream, Opus through WebCodecs or WebAssembly, and the decoded audio plays through the jitter buffer in
// an AudioWorklet (audio-output.js). No build step, nothing from the internet.
import { AudioOutput } from './audio-output.js';
import { createOpusDecoder, loadWasmModule, pickOpusDecoder } from './opus-decoders.js';
import { StageboxClient } from './client/stagebox-client.js';
import { DataChannelAudio, dataChannelSupported } from './datachannel-audio.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const CAPTURE = params.get('capture') === '1';
const MIX_MIN_DB = -60; // the fader's bottom: off
const MIX_EVERY_MS = 50; // at most 20 mix messages a second while a fader moves

// ---- identity: a stable client id, so the box gives this phone its mix back ------------------------------------

function clientId() {
  let id = localStorage.getItem('stagebox.clientId');
  if (!id || !/^[A-Za-z0-9._:-]{1,64}$/.test(id)) {
    // getRandomValues works on plain http too (randomUUID needs a secure context).
    const b = crypto.getRandomValues(new Uint8Array(8));
    id = 'web-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    localStorage.setItem('stagebox.clientId', id);
  }
  return id;
}

const state = {
  id: clientId(),
  name: localStorage.getItem('stagebox.name') || '',
  client: null, // the library's StageboxClient
  source: null,
  meta: { channels: [], groups: [] },
  mode: 'mix', // 'mix' | 'channels'
  codec: params.get('codec') || 'pcm16',
  picked: [],
  mix: { output: 'stereo', masterDb: 0, channels: new Map(), groups: new Map() },
  haveMix: false,
  out: null,
  decoderKind: null,
  stats: null,
  underrunBase: 0, // underruns of earlier jitter buffers (a layout or rate change starts a new one)
  lastUnderruns: 0,
  mixTimer: null,
  mixDirty: false,
  lastMixAt: 0,
  sentMix: false, // a mix went out on this connection
  answeredAt: 0, // when the box last confirmed a mix or subscription (performance.now())
};

// ---- small DOM helpers -----------------------------------------------------------------------------------------

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text); // never innerHTML: names come from the box
  return e;
}
function dbText(db) {
  return db === null ? 'off' : (db > 0 ? '+' : '') + db.toFixed(1) + ' dB';
}
function setConn(s, text) {
  const c = $('conn');
  c.dataset.state = s;
  c.textContent = text;
}
function showError(text) {
  const e = $('error');
  e.textContent = text;
  e.hidden = !text;
}

// ---- connection: the client library's StageboxClient ------------------------------------------------------------

/** Raw DEFLATE (the library strips the zlib wrapper and checks the Adler-32). */
function inflateRaw(raw) {
  const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  return new Response(stream).arrayBuffer().then((b) => new Uint8Array(b));
}

/** Runs a library request; one it refuses before sending (a codec or channel it cannot use) is shown. */
function request(fn) {
  if (!state.client) return; // not connected yet: the welcome decides (a default mix, or the box restores one)
  try {
    fn(state.client);
  } catch (err) {
    showError(err.message);
  }
}

function connect() {
  setConn('connecting', 'connecting…');
  const client = new StageboxClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`,
    clientId: state.id,
    name: state.name,
    inflateRaw,
    createOpusDecoder: (rate, channels) => createOpusDecoder(state.decoderKind, rate, channels),
    // Audio over a WebRTC data channel where the box offers it: a lost datagram costs its own packet, where the
    // WebSocket (TCP) would hold every packet behind it. The WebSocket carries the audio until the channel opens.
    // ?transport=ws keeps the audio on the WebSocket (an engineer ruling the data channel out; the wifi bench).
    ...(dataChannelSupported() && params.get('transport') !== 'ws' ? { webrtc: { openChannel } } : {}),
  });
  state.client = client;
  client.on('state', onState);
  client.on('welcome', onWelcome);
  client.on('metadata', (m) => {
    state.meta = { channels: m.channels || [], groups: m.groups || [] };
    buildChannelUi();
  });
  client.on('source', (src) => {
    state.source = src;
    $('source').textContent = sourceText();
    buildChannelUi();
  });
  client.on('mixing', onMixing);
  client.on('subscribed', (m) => {
    state.picked = m.channels.slice();
    state.codec = m.codec;
    setMode('channels', false);
    renderPicks();
    state.answeredAt = performance.now();
  });
  client.on('audio', onAudio);
  client.on('transport', (t) => showTransport(t.audio, t.reason));
  client.on('error', onError);
  client.on('stats', (s) => {
    if (s.rttMs !== null) $('rtt').textContent = s.rttMs.toFixed(1) + ' ms';
  });
  // A rejection means the client stopped before a welcome; the 'state' event has shown why.
  client.connect().catch(() => undefined);
}

/** The library's webrtc.openChannel: a DataChannelAudio, started at once (its state changes go to the library). */
function openChannel(handlers) {
  const channel = new DataChannelAudio(handlers);
  // A refused offer or a failed connection is reported through onState; the audio stays on the WebSocket.
  channel.start().catch(() => undefined);
  return channel;
}

const TRANSPORT_NAMES = { ws: 'WebSocket', udp: 'UDP', webrtc: 'WebRTC data channel' };
function showTransport(audio, reason) {
  const t = $('transport');
  t.dataset.kind = audio;
  t.textContent = TRANSPORT_NAMES[audio] || audio;
  t.title = reason || '';
}

function onState(ev) {
  if (ev.state === 'connecting') setConn('connecting', ev.attempt > 1 ? 'reconnecting…' : 'connecting…');
  else if (ev.state === 'closed' && ev.retryInMs !== null) setConn('offline', 'reconnecting…');
  else if (ev.state === 'closed' && ev.closeCode === 4010) {
    setConn('offline', 'opened elsewhere');
    showError('This listener was opened on another tab or device with the same id; reload to take it back.');
  } else if (ev.state === 'closed') {
    setConn('offline', ev.closeCode === 4002 ? 'update needed' : 'closed');
    showError(`The box closed the connection: ${ev.reason || ev.closeCode}`);
  }
}

function onError(e) {
  if (e.code === 'closed') return; // shown by onState, with what to do
  if (e.code === 'connect-failed') {
    console.warn(e.message); // the badge says reconnecting; the library retries with backoff
    return;
  }
  showError(e.code === 'bad-packet' ? e.message : `${e.code}: ${e.message}`);
}

function onWelcome(w) {
  state.source = w.source;
  setConn('live', 'live');
  showError('');
  // Every (re)connect starts on the WebSocket; a 'transport' event follows when a data channel opens.
  showTransport('ws', '');
  buildChannelUi();
  // A phone the box remembers gets its mix or channels back without asking (welcome.restored). Unless the box restored
  // a mix, the library sends this page's last choice again (so a mix's echo is ours); a phone new to the box starts a
  // default mix.
  state.sentMix = w.restored?.mode !== 'mix' && state.mode === 'mix' && state.haveMix;
  if (w.restored === null && state.mode === 'mix' && !state.haveMix) startDefault();
}

function onMixing(m) {
  if (m.client !== undefined) return; // the admin shape; never ours
  // The box's echo of our own mix is not applied: faders moved since would jump back. A restored mix (before we
  // sent one) or the engineer's change is.
  if (m.by === 'admin' || !state.sentMix) applyMix(m.mix);
  setMode('mix', false);
  state.answeredAt = performance.now();
}

function sourceText() {
  const s = state.source;
  if (!s) return '—';
  // Musicians should know when the box records them, and that a take playing back is not the stage.
  const what = s.kind === 'take' ? 'playing a recording, not the stage · ' : '';
  const rec = s.recording ? ' · ● REC' : '';
  return `${what}${s.state} · ${s.channels ?? '?'} ch · ${s.rate ? s.rate / 1000 + ' kHz' : '?'}${rec}`;
}

/** A phone the box has never seen: every channel of the mix at -20 dB, centred. */
function startDefault() {
  for (const s of strips()) state.mix.channels.set(s.ch, { gainDb: -20, pan: 0, mute: false, solo: false });
  renderStrips();
  sendMix();
}

// ---- audio --------------------------------------------------------------------------------------------------------

/** A packet the library decoded (in order, also the asynchronous deflate and Opus ones). */
function onAudio(a) {
  const out = state.out;
  if (!out || !out.kind) return; // not started: nothing to play
  const h = a.header;
  if (h.rate !== out.rate) {
    restartAudio(h.rate);
    return;
  }
  // `samples` is this packet's own array (the library makes a new one per packet): transferred, not copied.
  out.push({ seq: h.seq, samples: a.samples, channels: a.channels, rate: h.rate, mixed: h.mix, captureNs: h.captureNs, discontinuity: h.discontinuity });
}

/** Picks WebCodecs or WebAssembly for Opus before connecting: a restored Opus mix decodes from its first packet. */
async function loadOpusDecoder() {
  try {
    state.decoderKind = await pickOpusDecoder(params.get('decoder'));
    if (state.decoderKind === 'wasm') await loadWasmModule();
    $('decoder').dataset.kind = state.decoderKind;
    $('decoder').textContent = state.decoderKind === 'webcodecs' ? 'WebCodecs' : 'WebAssembly';
  } catch (err) {
    showError(`the Opus decoder could not load: ${err.message}`);
  }
}

async function startAudio() {
  $('start').disabled = true;
  const rate = state.source?.rate || 48000;
  try {
    const out = new AudioOutput({ rate, captureSeconds: CAPTURE ? 2 : 0, forceScript: params.get('output') === 'script', onStats });
    await out.start();
    state.out = out;
    $('engine').dataset.kind = out.kind;
    $('engine').textContent = out.kind === 'worklet' ? 'AudioWorklet' : 'ScriptProcessor';
    $('start').hidden = true;
    document.body.dataset.audio = 'on';
  } catch (err) {
    $('start').disabled = false;
    showError(`audio could not start: ${err.message}`);
  }
}

let restarting = false;
async function restartAudio(rate) {
  if (restarting) return;
  restarting = true;
  const old = state.out;
  state.out = null;
  await old.close();
  state.source = { ...(state.source || {}), rate };
  await startAudio();
  restarting = false;
}

function onStats(s) {
  state.stats = s;
  const j = s.jitter;
  if (!j) return;
  // Underruns since the page started: a new jitter buffer (layout or rate change) counts from 0 again.
  if (j.underruns < state.lastUnderruns) state.underrunBase += state.lastUnderruns;
  state.lastUnderruns = j.underruns;
  const underruns = state.underrunBase + j.underruns;
  // The buffer lives in the worklet: the library's `report` sends these figures once a second.
  state.client?.setPlaybackStats({ bufferMs: j.latencyMs, underruns });
  if (!state.out) return;
  const outMs = state.out.outputLatencyMs();
  const total = j.latencyMs + outMs;
  const lat = $('latency');
  lat.textContent = total.toFixed(1) + ' ms';
  lat.dataset.ms = total.toFixed(1);
  lat.title = `jitter buffer ${j.latencyMs.toFixed(1)} ms + audio output ${outMs.toFixed(1)} ms (AudioContext baseLatency + outputLatency)`;
  $('latency-parts').textContent = `buffer ${j.latencyMs.toFixed(1)} + output ${outMs.toFixed(1)}`;
  $('underruns').textContent = String(underruns);
  $('underruns').dataset.count = String(underruns);
}

// ---- mix and channel picking ----------------------------------------------------------------------------------------

/** One strip per channel, a stereo pair as one strip under its lower channel. */
function strips() {
  const n = state.source?.channels ?? 0;
  const meta = new Map(state.meta.channels.map((c) => [c.ch, c]));
  const out = [];
  for (let ch = 0; ch < n; ch++) {
    const m = meta.get(ch) || {};
    if (m.link !== undefined && m.link < ch) continue; // the right side of a pair
    const pair = m.link !== undefined ? m.link : null;
    const name = m.name || (pair !== null ? `${ch + 1}/${pair + 1}` : `Ch ${ch + 1}`);
    out.push({ ch, pair, name, color: m.color || null, group: m.group || null });
  }
  return out;
}

/** The page's mix as the library's mix() takes it (the protocol's `mix` without `type`). */
function mixRequest() {
  const channels = [];
  for (const s of strips()) {
    const c = state.mix.channels.get(s.ch) || { gainDb: null, pan: 0, mute: false, solo: false };
    channels.push({ ch: s.ch, gainDb: c.gainDb, pan: c.pan, mute: c.mute, solo: c.solo });
  }
  const groups = [];
  for (const name of state.meta.groups) {
    const g = state.mix.groups.get(name);
    if (g) groups.push({ name, gainDb: g.gainDb, mute: g.mute });
  }
  const codec = state.codec === 'opus' || state.codec === 'pcm24' ? state.codec : 'pcm16';
  return { codec, output: state.mix.output, masterDb: state.mix.masterDb, channels, groups };
}

function sendMix() {
  state.haveMix = true;
  state.sentMix = true;
  const mix = mixRequest();
  request((c) => c.mix(mix));
  state.lastMixAt = performance.now();
}

/** Coalesces fader moves: at most one mix message per MIX_EVERY_MS, the last value always sent. */
function scheduleMix() {
  state.mixDirty = true;
  if (state.mixTimer !== null) return;
  const wait = Math.max(0, state.lastMixAt + MIX_EVERY_MS - performance.now());
  state.mixTimer = setTimeout(() => {
    state.mixTimer = null;
    if (!state.mixDirty) return;
    state.mixDirty = false;
    sendMix();
  }, wait);
}

function applyMix(mix) {
  state.haveMix = true;
  state.codec = mix.codec;
  state.mix.output = mix.output;
  state.mix.masterDb = mix.masterDb;
  state.mix.channels = new Map(mix.channels.map((c) => [c.ch, { gainDb: c.gainDb, pan: c.pan, mute: c.mute, solo: c.solo }]));
  state.mix.groups = new Map(mix.groups.map((g) => [g.name, { gainDb: g.gainDb, mute: g.mute }]));
  renderStrips();
}

function setMode(mode, tell) {
  state.mode = mode;
  document.body.dataset.mode = mode;
  $('mode-mix').checked = mode === 'mix';
  $('mode-channels').checked = mode === 'channels';
  $('codec').value = state.codec;
  $('codec-opus').disabled = mode === 'channels';
  if (!tell) return;
  if (mode === 'mix') sendMix();
  else sendSubscribe();
}

function sendSubscribe() {
  if (state.codec === 'opus') {
    state.codec = 'pcm16';
    $('codec').value = 'pcm16';
  }
  if (state.picked.length === 0) request((c) => c.unsubscribe());
  else request((c) => c.subscribe({ channels: state.picked, codec: state.codec }));
}

function buildChannelUi() {
  $('source').textContent = sourceText();
  renderStrips();
  renderPicks();
}

function fader(label, value, onInput) {
  const wrap = el('label', 'fader');
  const text = el('span', 'val', dbText(value));
  const input = el('input');
  input.type = 'range';
  input.min = String(MIX_MIN_DB);
  input.max = '10';
  input.step = '0.5';
  input.value = String(value === null ? MIX_MIN_DB : value);
  input.setAttribute('aria-label', label);
  input.addEventListener('input', () => {
    const v = Number(input.value);
    const db = v <= MIX_MIN_DB ? null : v;
    text.textContent = dbText(db);
    onInput(db);
  });
  wrap.append(input, text);
  return wrap;
}

function toggle(cls, label, on, onChange) {
  const b = el('button', 'toggle ' + cls, label);
  b.type = 'button';
  b.setAttribute('aria-pressed', String(on));
  b.addEventListener('click', () => {
    const v = b.getAttribute('aria-pressed') !== 'true';
    b.setAttribute('aria-pressed', String(v));
    onChange(v);
  });
  return b;
}

function renderStrips() {
  const box = $('strips');
  box.textContent = '';
  for (const s of strips()) {
    let c = state.mix.channels.get(s.ch);
    if (!c) {
      c = { gainDb: null, pan: 0, mute: false, solo: false };
      state.mix.channels.set(s.ch, c);
    }
    const strip = el('div', 'strip');
    strip.dataset.ch = String(s.ch);
    if (s.color) strip.style.borderLeftColor = s.color;
    const head = el('div', 'strip-head');
    head.append(el('span', 'name', s.name));
    if (s.group) head.append(el('span', 'tag', s.group));
    head.append(
      toggle('mute', 'M', c.mute, (v) => {
        c.mute = v;
        scheduleMix();
      }),
      toggle('solo', 'S', c.solo, (v) => {
        c.solo = v;
        scheduleMix();
      }),
    );
    const f = fader(`${s.name} level`, c.gainDb, (db) => {
      c.gainDb = db;
      scheduleMix();
    });
    f.classList.add('gain');
    const pan = el('label', 'pan');
    const p = el('input');
    p.type = 'range';
    p.min = '-1';
    p.max = '1';
    p.step = '0.05';
    p.value = String(c.pan);
    p.setAttribute('aria-label', `${s.name} ${s.pair !== null ? 'balance' : 'pan'}`);
    const pt = el('span', 'val', panText(c.pan));
    p.addEventListener('input', () => {
      c.pan = Number(p.value);
      pt.textContent = panText(c.pan);
      scheduleMix();
    });
    pan.append(el('span', 'lbl', 'L'), p, el('span', 'lbl', 'R'), pt);
    strip.append(head, f, pan);
    box.append(strip);
  }
  const gbox = $('groups');
  gbox.textContent = '';
  $('groups-card').hidden = state.meta.groups.length === 0;
  for (const name of state.meta.groups) {
    let g = state.mix.groups.get(name);
    if (!g) {
      g = { gainDb: 0, mute: false };
      state.mix.groups.set(name, g);
    }
    const row = el('div', 'strip group');
    row.dataset.group = name;
    const head = el('div', 'strip-head');
    head.append(
      el('span', 'name', name),
      toggle('mute', 'M', g.mute, (v) => {
        g.mute = v;
        scheduleMix();
      }),
    );
    row.append(
      head,
      fader(`group ${name} level`, g.gainDb, (db) => {
        g.gainDb = db;
        scheduleMix();
      }),
    );
    gbox.append(row);
  }
}

function panText(p) {
  return p === 0 ? 'C' : (p < 0 ? 'L' : 'R') + Math.round(Math.abs(p) * 100);
}

function renderPicks() {
  const box = $('picks');
  box.textContent = '';
  const meta = new Map(state.meta.channels.map((c) => [c.ch, c]));
  const n = state.source?.channels ?? 0;
  for (let ch = 0; ch < n; ch++) {
    const m = meta.get(ch) || {};
    const l = el('label', 'pick');
    const cb = el('input');
    cb.type = 'checkbox';
    cb.value = String(ch);
    cb.checked = state.picked.includes(ch);
    cb.addEventListener('change', () => {
      state.picked = [...box.querySelectorAll('input:checked')].map((i) => Number(i.value));
      sendSubscribe();
    });
    if (m.color) l.style.borderLeftColor = m.color;
    l.append(cb, el('span', 'name', m.name ? `${ch + 1} ${m.name}` : `Ch ${ch + 1}`));
    box.append(l);
  }
}

// ---- page ---------------------------------------------------------------------------------------------------------

async function init() {
  $('client-id').textContent = state.id;
  const name = $('name');
  name.value = state.name;
  // The name goes out with hello: the box sees a new one at the next page load.
  name.addEventListener('change', () => {
    state.name = name.value.slice(0, 64);
    localStorage.setItem('stagebox.name', state.name);
  });
  $('start').addEventListener('click', startAudio);
  $('mode-mix').addEventListener('change', () => setMode('mix', true));
  $('mode-channels').addEventListener('change', () => setMode('channels', true));
  $('codec').addEventListener('change', () => {
    state.codec = $('codec').value;
    if (state.mode === 'mix') sendMix();
    else sendSubscribe();
  });
  setMode(state.mode, false);
  // For diagnostics and the browser tests; capture() returns audio only with ?capture=1.
  window.stageboxListen = {
    state: () => ({ clientId: state.id, mode: state.mode, codec: state.codec, decoder: state.decoderKind, output: state.out?.kind ?? null, stats: state.stats, mix: mixRequest(), picked: state.picked, answeredAt: state.answeredAt, connection: state.client?.connectionState ?? null, now: performance.now() }),
    capture: () => (state.out ? state.out.capture() : Promise.reject(new Error('audio not started'))),
  };
  await loadOpusDecoder();
  connect();
}

init().catch((err) => showError(`the listener could not start: ${err.message}`));
