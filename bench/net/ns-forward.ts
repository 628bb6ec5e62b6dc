/**
 * Runs inside the harness's box namespace: a Unix socket (on the shared
 * filesystem) forwarded to a TCP port there, so the bench, in the host's
 * namespace, reaches the service's HTTP API without crossing the impaired link.
 *
 *   node ns-forward.js <socket path> <host> <port>
 *
 * Prints "ready" once listening; exits when its parent does (setpriv's
 * parent-death signal) or on SIGTERM.
 */
import net from 'node:net';

const [sock, host, portText] = process.argv.slice(2);
const port = Number(portText);
if (!sock || !host || !Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write('usage: node ns-forward.js <socket path> <host> <port 1-65535>\n');
  process.exit(2);
}

const server = net.createServer((client) => {
  const upstream = net.connect(port, host);
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(sock, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
