/** A small typed event emitter (no Node `events` import, so it runs in browsers). */
export class Emitter<M extends object> {
  private readonly handlers = new Map<keyof M, Set<(event: never) => void>>();

  on<K extends keyof M>(type: K, handler: (event: M[K]) => void): () => void {
    let set = this.handlers.get(type);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler as (event: never) => void);
    return () => this.off(type, handler);
  }

  off<K extends keyof M>(type: K, handler: (event: M[K]) => void): void {
    this.handlers.get(type)?.delete(handler as (event: never) => void);
  }

  once<K extends keyof M>(type: K, handler: (event: M[K]) => void): () => void {
    const wrapped = (event: M[K]): void => {
      this.off(type, wrapped);
      handler(event);
    };
    return this.on(type, wrapped);
  }

  listenerCount(type: keyof M): number {
    return this.handlers.get(type)?.size ?? 0;
  }

  /**
   * Calls every handler of `type`. A throwing handler must not break the client's own state
   * machine, so its error is rethrown from a microtask (reported like any uncaught error).
   */
  emit<K extends keyof M>(type: K, event: M[K]): void {
    const set = this.handlers.get(type);
    if (set === undefined || set.size === 0) return;
    for (const h of [...set]) {
      try {
        (h as (event: M[K]) => void)(event);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
