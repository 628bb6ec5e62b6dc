import mqtt, { type MqttClient } from 'mqtt';
import { waitFor } from './wait';

export interface SeenMessage {
  topic: string;
  payload: string;
  retain: boolean;
  /** performance.now() on arrival. */
  at: number;
}

/**
 * A real MQTT client (MQTT.js) subscribed to some topics, recording every
 * message, with bounded waits on them.
 */
export class MqttWatch {
  readonly messages: SeenMessage[] = [];

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload: payload.toString('utf8'), retain: packet.retain, at: performance.now() });
    });
  }

  /** Connects (bounded) and subscribes to `topics`. */
  static async open(url: string, topics: string[], opts: { username?: string; password?: string } = {}): Promise<MqttWatch> {
    const client = mqtt.connect(url, { reconnectPeriod: 200, connectTimeout: 5000, clean: true, ...opts });
    const w = new MqttWatch(client);
    client.on('error', () => undefined);
    await waitFor(() => client.connected, { timeoutMs: 10000, what: `MQTT watcher connected to ${url}` });
    await client.subscribeAsync(topics, { qos: 1 });
    return w;
  }

  /** Waits for a message on `topic` (already seen or future) whose payload satisfies `pred`. */
  waitFor(topic: string, pred: (payload: string, m: SeenMessage) => boolean = () => true, timeoutMs = 15000, after = -1): Promise<SeenMessage> {
    return waitFor(() => this.messages.find((m) => m.at > after && m.topic === topic && pred(m.payload, m)), {
      timeoutMs,
      what: `an MQTT message on ${topic}`,
      describe: () => this.describe(topic),
    });
  }

  /** The last message on `topic`, if any. */
  last(topic: string): SeenMessage | undefined {
    for (let i = this.messages.length - 1; i >= 0; i--) if (this.messages[i]!.topic === topic) return this.messages[i];
    return undefined;
  }

  describe(topic?: string): string {
    const list = topic ? this.messages.filter((m) => m.topic === topic) : this.messages;
    return `${list.length} message(s)${topic ? ` on ${topic}` : ''}; last: ${JSON.stringify(list.slice(-3).map((m) => ({ t: m.topic, p: m.payload.slice(0, 300), r: m.retain })))}`;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
