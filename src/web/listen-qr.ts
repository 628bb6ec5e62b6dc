import type http from 'node:http';
import QRCode from 'qrcode';
import { LISTEN_PATH } from './listen-routes';

/** The dashboard's QR code of the listener's URL. */
export const LISTEN_QR_PATH = '/api/listen-qr.svg';

/** QR codes kept per Host value (a box is reached by a handful of names and addresses). */
const CACHE_MAX = 16;

/**
 * What a Host header may be: a DNS name, an IPv4 address or a bracketed
 * IPv6 address, optionally with a port. Anything else (spaces, quotes,
 * angle brackets, userinfo, paths) is refused, so it never reaches the QR
 * code nor any answer.
 */
const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::([0-9]{1,5}))?$/;

/** The listener's URL as reached through `host` (the request's Host header), or a RangeError saying why not. */
export function listenUrl(host: string | undefined): string {
  if (host === undefined || host === '') throw new RangeError('the request has no Host header; allowed: a host name or address with an optional port');
  const m = host.length <= 261 ? HOST_RE.exec(host) : null;
  const port = m?.[1] === undefined ? null : Number(m[1]);
  if (m === null || (port !== null && (port < 1 || port > 65535))) {
    // Shown with every character outside plain printable ASCII, and any of < > & " ' \\, as \\uXXXX: never markup.
    const cut = host.length > 80 ? host.slice(0, 80) : host;
    const shown = '"' + cut.replace(/[^\x20-\x7e]|[<>&"'\\]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')) + (cut === host ? '"' : '"…');
    throw new RangeError(`Host header ${shown} is not a host name, IPv4 or [IPv6] address with an optional port 1-65535`);
  }
  return `http://${host}${LISTEN_PATH}`;
}

/**
 * `GET /api/listen-qr.svg`: an SVG QR code of `http://<Host>/listen/`, made
 * on the box (the stage has no internet), for the dashboard to show so a
 * musician's phone camera opens the listener. The URL is also in the
 * `x-listen-url` header. A Host header that is not a plain host[:port] gets
 * 400 with the reason. Returns a handler that answers false for other paths.
 */
export function createListenQrRoute(): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  const cache = new Map<string, string>();
  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    if ((q < 0 ? url : url.slice(0, q)) !== LISTEN_QR_PATH) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, `method ${req.method} not allowed on ${LISTEN_QR_PATH}; allowed: GET, HEAD`, { allow: 'GET, HEAD' });
      return true;
    }
    let target: string;
    try {
      target = listenUrl(req.headers.host);
    } catch (err) {
      sendText(res, 400, (err as Error).message);
      return true;
    }
    const send = (svg: string): void => {
      res.writeHead(200, {
        'content-type': 'image/svg+xml',
        'content-length': Buffer.byteLength(svg),
        'cache-control': 'no-cache',
        vary: 'host',
        'x-listen-url': target,
        'x-content-type-options': 'nosniff',
      });
      res.end(req.method === 'HEAD' ? undefined : svg);
    };
    const hit = cache.get(target);
    if (hit !== undefined) {
      send(hit);
      return true;
    }
    QRCode.toString(target, { type: 'svg', errorCorrectionLevel: 'M', margin: 2, color: { dark: '#000000', light: '#ffffff' } }).then(
      (svg) => {
        if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
        cache.set(target, svg);
        send(svg);
      },
      (err: Error) => sendText(res, 500, `QR code of ${target} failed: ${err.message}`),
    );
    return true;
  };
}

function sendText(res: http.ServerResponse, status: number, text: string, extra: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { ...extra, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'x-content-type-options': 'nosniff' });
  res.end(text);
}
