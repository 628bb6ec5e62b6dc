// Opus in the browser, offline: WebCodecs' AudioDecoder where the browser has it (a secure context: https or
// localhost), else the WebAssembly libopus build served by the box (/listen/vendor/opus-decoder.min.js, from the
// npm package opus-decoder). Both follow the client library's contract:
// createOpusDecoder(rate, channels) -> { kind, decode(packet) -> Promise<Float32Array interleaved>, free() }.

/** Which decoder this browser gets; `prefer` 'wasm' forces the fallback (the page's `?decoder=wasm`). */
export async function pickOpusDecoder(prefer) {
  if (prefer !== 'wasm' && typeof AudioDecoder === 'function') {
    try {
      const s = await AudioDecoder.isConfigSupported({ codec: 'opus', sampleRate: 48000, numberOfChannels: 2 });
      if (s.supported) return 'webcodecs';
    } catch {
      // not supported: fall through to WebAssembly
    }
  }
  return 'wasm';
}

/**
 * Synchronous, as the library's PacketDecoder wants it; for 'wasm' call loadWasmModule() first.
 * @returns {{kind: string, decode(p: Uint8Array): Promise<Float32Array>, free(): void}}
 */
export function createOpusDecoder(kind, rate, channels) {
  if (rate !== 48000) throw new RangeError(`an Opus stream must be 48000 Hz; got ${rate}`);
  if (channels !== 1 && channels !== 2) throw new RangeError(`an Opus mix has 1 or 2 channels; got ${channels}`);
  return kind === 'webcodecs' ? webCodecsDecoder(channels) : wasmDecoder(channels);
}

function interleave(planes, frames) {
  const n = planes.length;
  if (n === 1) return planes[0].length === frames ? planes[0] : planes[0].slice(0, frames);
  const out = new Float32Array(frames * n);
  for (let c = 0; c < n; c++) {
    const p = planes[c];
    for (let i = 0; i < frames; i++) out[i * n + c] = p[i];
  }
  return out;
}

function webCodecsDecoder(channels) {
  // One output per input chunk, in order: each decode() waits for the next output.
  const waiting = [];
  let failed = null;
  const dec = new AudioDecoder({
    output(data) {
      const frames = data.numberOfFrames;
      const planes = [];
      for (let c = 0; c < data.numberOfChannels; c++) {
        const p = new Float32Array(frames);
        data.copyTo(p, { planeIndex: c, format: 'f32-planar' });
        planes.push(p);
      }
      data.close();
      const w = waiting.shift();
      if (w) w.resolve(interleave(planes, frames));
    },
    error(err) {
      failed = err;
      for (const w of waiting.splice(0)) w.reject(err);
    },
  });
  dec.configure({ codec: 'opus', sampleRate: 48000, numberOfChannels: channels });
  let ts = 0;
  return {
    kind: 'webcodecs',
    decode(packet) {
      if (failed) return Promise.reject(failed);
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        dec.decode(new EncodedAudioChunk({ type: 'key', timestamp: ts, data: packet }));
        ts += 2500; // µs; only ordering matters here
      });
    },
    free() {
      if (dec.state !== 'closed') dec.close();
    },
  };
}

let wasmModule = null;
let wasmLoaded = null;
/** Loads the UMD build once as a classic script (it defines globalThis["opus-decoder"]). */
export function loadWasmModule() {
  if (wasmModule === null) {
    wasmModule = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = new URL('vendor/opus-decoder.min.js', document.baseURI).href;
      s.onload = () => {
        const m = globalThis['opus-decoder'];
        if (m && typeof m.OpusDecoder === 'function') resolve((wasmLoaded = m));
        else reject(new Error('opus-decoder.min.js loaded but defined no OpusDecoder'));
      };
      s.onerror = () => reject(new Error(`could not load ${s.src}`));
      document.head.append(s);
    });
  }
  return wasmModule;
}

function wasmDecoder(channels) {
  if (wasmLoaded === null) throw new Error('the WebAssembly Opus decoder is not loaded yet (loadWasmModule)');
  const dec = new wasmLoaded.OpusDecoder({ channels, sampleRate: 48000, preSkip: 0 });
  return {
    kind: 'wasm',
    async decode(packet) {
      await dec.ready;
      const r = dec.decodeFrame(packet);
      if (r.errors && r.errors.length > 0) throw new Error(`Opus decode failed: ${r.errors[0].message}`);
      return interleave(r.channelData.slice(0, channels), r.samplesDecoded);
    },
    free() {
      dec.free();
    },
  };
}
