// Typing notices both ways: outgoing ones throttled per peer (the server forwards at most one
// per pair per second anyway, so more would be wasted frames), incoming ones turned into a
// typing state that ends by itself when the notices stop, as a keystroke has no "stopped" event.

export class TypingTracker {
  private readonly sentAt = new Map<string, number>()
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>()

  constructor(
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly changed: (peer: string, typing: boolean) => void,
  ) {}

  /** True when a notice to `peer` may go now; the caller then sends it. */
  mayNotify(peer: string, now = Date.now()): boolean {
    const last = this.sentAt.get(peer)
    if (last !== undefined && now - last < this.intervalMs) return false
    if (this.sentAt.size > 256) for (const [p, at] of this.sentAt) if (now - at >= this.intervalMs) this.sentAt.delete(p)
    this.sentAt.set(peer, now)
    return true
  }

  /** A message went to `peer`: it ends their "typing…", so the next keystroke notifies at once. */
  messageSent(peer: string): void {
    this.sentAt.delete(peer)
  }

  /** The notice `mayNotify` allowed did not go out: it does not count against the interval. */
  notSent(peer: string): void {
    this.sentAt.delete(peer)
  }

  /** A notice from `peer`: typing until `timeoutMs` passes without another. */
  noticed(peer: string): void {
    const running = this.timers.get(peer)
    if (running !== undefined) clearTimeout(running)
    else this.changed(peer, true)
    this.timers.set(
      peer,
      setTimeout(() => this.stopped(peer), this.timeoutMs),
    )
  }

  /** `peer` is no longer typing: their message came, or the timeout passed. */
  stopped(peer: string): void {
    const running = this.timers.get(peer)
    if (running === undefined) return
    clearTimeout(running)
    this.timers.delete(peer)
    this.changed(peer, false)
  }

  /** The connection is gone: nobody is known to be typing. */
  clear(): void {
    for (const peer of [...this.timers.keys()]) this.stopped(peer)
    this.sentAt.clear()
  }
}
