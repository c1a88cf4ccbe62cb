// A minimal typed event emitter: node:events is not available in browsers, and the
// client must run in both without a polyfill.

export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<(value: never) => void>>()

  /** Subscribes; the returned function unsubscribes. */
  on<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): () => void {
    let set = this.listeners.get(event)
    if (set === undefined) this.listeners.set(event, (set = new Set()))
    set.add(listener)
    return () => set.delete(listener)
  }

  /** Resolves with the next value of `event`. */
  once<K extends keyof Events>(event: K): Promise<Events[K]> {
    return new Promise((resolve) => {
      const off = this.on(event, (value) => {
        off()
        resolve(value)
      })
    })
  }

  protected emit<K extends keyof Events>(event: K, value: Events[K]): void {
    const set = this.listeners.get(event)
    if (set === undefined) return
    for (const listener of [...set]) {
      // A throwing listener must not break the client's own bookkeeping.
      try {
        ;(listener as (value: Events[K]) => void)(value)
      } catch (err) {
        queueMicrotask(() => {
          throw err
        })
      }
    }
  }
}
