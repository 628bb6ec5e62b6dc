import { lstatSync, readdirSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { DashboardFiles } from './dashboard-routes';

const ROOT = path.resolve(__dirname, '..', '..', '..');
/** The listener page's own files (plain HTML/CSS/JS, no build step). */
export const LISTEN_DIR = path.join(ROOT, 'web', 'listen');
/** The client library (src/client) built as ES modules by tsconfig.web-client.json (`make build`). */
export const WEB_CLIENT_DIR = path.join(ROOT, 'dist', 'web', 'client');
/** The protocol module (src/protocol) the library imports, from the same build. */
export const WEB_PROTOCOL_DIR = path.join(ROOT, 'dist', 'web', 'protocol');
/** The WebAssembly Opus decoder for browsers without WebCodecs (one self-contained UMD file, wasm inlined). */
export const OPUS_WASM_FILE = require.resolve('opus-decoder').replace(/index\.js$/, path.join('dist', 'opus-decoder.min.js'));

/** The page's URL; `/listen` without the slash is redirected here so its relative URLs resolve under it. */
export const LISTEN_PATH = '/listen/';

/**
 * Like the dashboard's, but the page compiles the WebAssembly Opus decoder
 * ('wasm-unsafe-eval' allows WebAssembly.compile and nothing else) and
 * loads its AudioWorklet from the box.
 */
const LISTEN_PAGE_HEADERS: http.OutgoingHttpHeaders = {
  'content-security-policy':
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};

/**
 * The browser listener at `/listen/`: the page from web/listen/, the client
 * library's browser build under `/listen/client/` (and the protocol module
 * it imports under `/listen/protocol/`), and the WASM Opus decoder
 * under `/listen/vendor/`. Every file is read once at start (as the
 * dashboard's are), so nothing reaches the disk per request and no URL can
 * name a file outside this fixed table.
 */
export class ListenPage {
  private readonly files: DashboardFiles;

  /** Throws (naming the folder) if the page, the library build or the decoder cannot be read. */
  constructor(dir: string = LISTEN_DIR, clientDir: string = WEB_CLIENT_DIR, opusFile: string = OPUS_WASM_FILE, protocolDir: string = WEB_PROTOCOL_DIR) {
    const extra = new Map<string, string>();
    addBuild(extra, 'client', clientDir);
    addBuild(extra, 'protocol', protocolDir);
    extra.set(`${LISTEN_PATH}vendor/opus-decoder.min.js`, opusFile);
    this.files = new DashboardFiles(dir, { prefix: LISTEN_PATH, pageHeaders: LISTEN_PAGE_HEADERS, extra });
  }

  /** URL paths served, for logs and tests. */
  get paths(): string[] {
    return this.files.paths;
  }

  /** Answers `/listen` (a redirect) and the page's files; false for any other path. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    if (pathname === '/listen') {
      res.writeHead(308, { location: LISTEN_PATH + (q < 0 ? '' : url.slice(q)), 'content-length': 0 });
      res.end();
      return true;
    }
    return this.files.handle(req, res);
  }
}

/** Adds every .js file of one browser build folder under `/listen/<urlDir>/`; throws naming the folder if it has none. */
function addBuild(extra: Map<string, string>, urlDir: string, dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    throw new Error(`client library browser build ${dir} unreadable (${(err as Error).message}); run make build`);
  }
  let added = 0;
  for (const name of names) {
    if (!/^[a-z0-9][a-z0-9-]*\.js$/.test(name) || !lstatSync(path.join(dir, name)).isFile()) continue;
    extra.set(`${LISTEN_PATH}${urlDir}/${name}`, path.join(dir, name));
    added++;
  }
  if (added === 0) throw new Error(`client library browser build ${dir} has no .js file; run make build`);
}
