import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';

/** The dashboard's folder: web/dashboard/ at the repository (or install) root; this file runs from dist/src/web/. */
export const DASHBOARD_DIR = path.resolve(__dirname, '..', '..', '..', 'web', 'dashboard');

/** Served types by extension; a file of any other type in the folder is not served. */
const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.webmanifest': 'application/manifest+json',
};

/** An asset asked for with its current version (`?v=<hash>`) never changes: cache it for a year. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** The page, and an asset asked for without its version: keep, but ask again each time (304 if unchanged). */
const REVALIDATE = 'no-cache';

/**
 * The page may load only its own files and talk only to the box: nothing
 * from the internet (there is none on a stage), no inline script.
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
  /** Short content hash: the `v` query value of its immutable URL. */
  version: string;
}

/**
 * The dashboard's static files, read once at start into memory (the folder
 * holds a few kilobytes): nothing touches the disk per request, and a
 * request can only ever get one of these files. Paths are looked up whole
 * in a table of the folder's own file names, never joined onto a directory,
 * so `..`, encoded slashes or absolute paths cannot reach anything else.
 *
 * The page is `index.html` at `/`; its references to the other files are
 * rewritten at load to carry a content hash (`app.js?v=1a2b…`), so those
 * can be cached for good while the page itself is revalidated every load.
 */
export class DashboardFiles {
  private readonly files = new Map<string, StaticFile>();
  private readonly prefix: string;
  private readonly pageHeaders: http.OutgoingHttpHeaders;

  /**
   * Reads every plain file of a served type directly in `dir` (no subfolders, no symlinks). Throws if `dir` cannot be
   * read or has no index.html. `opts.prefix` (default `/`, ends with `/`) is the page's URL and the folder of the
   * others; `opts.pageHeaders` replace the page's security headers; `opts.extra` adds files from elsewhere by URL
   * path (served as they are, revalidated each load), read once like the rest.
   */
  constructor(
    readonly dir: string = DASHBOARD_DIR,
    opts: { prefix?: string; pageHeaders?: http.OutgoingHttpHeaders; extra?: ReadonlyMap<string, string> } = {},
  ) {
    this.prefix = opts.prefix ?? '/';
    this.pageHeaders = opts.pageHeaders ?? PAGE_HEADERS;
    const raw = new Map<string, { body: Buffer; type: string }>();
    for (const name of readdirSync(dir).sort()) {
      const type = TYPES[path.extname(name)];
      if (type === undefined || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) continue;
      const file = path.join(dir, name);
      // lstat: a symlink (or anything but a plain file) is never followed out of the folder.
      if (!lstatSync(file).isFile()) continue;
      raw.set(name, { body: readFileSync(file), type });
    }
    const index = raw.get('index.html');
    if (!index) throw new Error(`dashboard folder ${dir} has no index.html`);
    let html = index.body.toString('utf8');
    for (const [name, f] of raw) {
      if (name === 'index.html') continue;
      const file = finish(f.body, f.type);
      this.files.set(this.prefix + name, file);
      html = html.replaceAll(`="${name}"`, `="${name}?v=${file.version}"`);
    }
    const page = finish(Buffer.from(html), index.type);
    this.files.set(this.prefix, page);
    this.files.set(this.prefix + 'index.html', page);
    for (const [url, file] of opts.extra ?? []) {
      const type = TYPES[path.extname(file)];
      if (type === undefined) throw new Error(`extra file ${file} for ${url} has no served type; allowed: ${Object.keys(TYPES).join(', ')}`);
      this.files.set(url, finish(readFileSync(file), type));
    }
  }

  /** URL paths served, for logs and tests. */
  get paths(): string[] {
    return [...this.files.keys()];
  }

  /**
   * Answers a request for one of the files; returns false (and answers
   * nothing) for any other path, so the caller's routes can take it.
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    const f = this.files.get(pathname);
    if (f === undefined) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const text = `method ${req.method} not allowed on ${pathname}; allowed: GET, HEAD`;
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return true;
    }
    const isPage = pathname === this.prefix || pathname === this.prefix + 'index.html';
    const versioned = !isPage && q >= 0 && new URLSearchParams(url.slice(q + 1)).get('v') === f.version;
    const headers: http.OutgoingHttpHeaders = {
      etag: f.etag,
      'cache-control': versioned ? IMMUTABLE : REVALIDATE,
      'x-content-type-options': 'nosniff',
      ...(isPage ? this.pageHeaders : {}),
    };
    if (etagMatches(req.headers['if-none-match'], f.etag)) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    res.writeHead(200, { ...headers, 'content-type': f.type, 'content-length': f.body.length });
    if (req.method === 'HEAD') res.end();
    else res.end(f.body);
    return true;
  }
}

function finish(body: Buffer, type: string): StaticFile {
  const version = createHash('sha256').update(body).digest('hex').slice(0, 16);
  return { body, type, version, etag: `"${version}"` };
}

/** If-None-Match: a list of (possibly weak) tags or `*`. */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  for (const part of header.split(',')) {
    const t = part.trim();
    if (t === '*' || t === etag || t === `W/${etag}`) return true;
  }
  return false;
}
