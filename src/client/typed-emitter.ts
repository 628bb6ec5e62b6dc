/**
 * A small typed event emitter (Node's EventEmitter is not available in
 * browsers or worklets). Listeners run in the order they were added; one that
 * throws stops the emit and the error reaches the caller, as with Node's.
 */
export class TypedEmitter<Events extends { [K in keyof Events]: unknown }> {
  private readonly listeners: { [K in keyof Events]?: ((arg: Events[K]) => void)[] } = {};

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(event: K, fn: (arg: Events[K]) => void): () => void {
    (this.listeners[event] ??= []).push(fn);
    return () => this.off(event, fn);
  }

  off<K extends keyof Events>(event: K, fn: (arg: Events[K]) => void): void {
    const list = this.listeners[event];
    if (!list) return;
    const i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
  }

  /** Resolves with the next `event` for which `pred` (default: any) holds. */
  once<K extends keyof Events>(event: K, pred: (arg: Events[K]) => boolean = () => true): Promise<Events[K]> {
    return new Promise((resolve) => {
      const off = this.on(event, (arg) => {
        if (!pred(arg)) return;
        off();
        resolve(arg);
      });
    });
  }

  protected emit<K extends keyof Events>(event: K, arg: Events[K]): void {
    const list = this.listeners[event];
    if (!list || list.length === 0) return;
    for (const fn of list.length === 1 ? list : list.slice()) fn(arg);
  }

  listenerCount<K extends keyof Events>(event: K): number {
    return this.listeners[event]?.length ?? 0;
  }
}
