import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createBroker } from 'aedes';
import type Aedes from 'aedes';

export interface EmbeddedBrokerOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  log: { info(obj: object, msg: string): void; error(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/**
 * A small MQTT broker inside the service (aedes over plain TCP, anonymous,
 * in-memory retained messages) so a box with no facility broker still shows
 * its health to `mosquitto_sub -h <box> -t 'stagebox/#'`.
 */
export class EmbeddedBroker {
  private aedes: Aedes | null = null;
  private server: net.Server | null = null;
  /** The port actually bound (after start). */
  port = 0;

  constructor(private readonly opts: EmbeddedBrokerOptions) {}

  /**
   * Listens; resolves true when listening, false when the port cannot be had
   * (logged: the service carries on without MQTT rather than failing).
   */
  async start(): Promise<boolean> {
    const aedes = createBroker();
    // A misbehaving MQTT client must not bring the service down: aedes reports it here.
    aedes.on('clientError', (client, err) => this.opts.log.warn({ clientId: client?.id, err: err.message }, 'embedded MQTT broker: client error'));
    aedes.on('connectionError', (client, err) => this.opts.log.warn({ clientId: client?.id, err: err.message }, 'embedded MQTT broker: connection error'));
    const server = net.createServer(aedes.handle);
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const hint = err.code === 'EADDRINUSE' ? ' (another MQTT broker, e.g. mosquitto, may hold it: set mqtt.url to publish there, or mqtt.embeddedBroker.port)' : '';
        this.opts.log.error(
          { host: this.opts.host, port: this.opts.port, err: err.message },
          `embedded MQTT broker cannot listen on ${this.opts.host}:${this.opts.port}${hint}; audio runs on, health is NOT published over MQTT`,
        );
        resolve(false);
      });
      server.listen(this.opts.port, this.opts.host, () => resolve(true));
    });
    if (!ok) {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      return false;
    }
    server.on('error', (err) => this.opts.log.warn({ err: err.message }, 'embedded MQTT broker: server error'));
    this.aedes = aedes;
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.opts.log.info({ host: this.opts.host, port: this.port }, 'embedded MQTT broker listening');
    return true;
  }

  /** The URL the service's own client connects to. */
  get localUrl(): string {
    const h = this.opts.host;
    const host = h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h;
    return `mqtt://${host}:${this.port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    const aedes = this.aedes;
    this.server = null;
    this.aedes = null;
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        setTimeout(resolve, 300).unref();
      });
    }
  }
}
