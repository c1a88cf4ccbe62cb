// Delivered flags are written after the push, so a send or a replay never waits on them. A
// client that reconnects the moment it has its messages would otherwise bind before the flags
// are committed and get those messages again: a replay for a uid first waits for the flag
// writes of that uid still in flight.

export class DeliveryMarks {
  /** Per uid: settles once every flag write tracked so far for it has finished. */
  private readonly pending = new Map<string, Promise<void>>()

  /** Tracks a flag write for `uid`. Its failure is the caller's to handle: here it only ends the wait. */
  track(uid: string, write: Promise<unknown>): void {
    const previous = this.pending.get(uid)
    const settled: Promise<void> = Promise.allSettled(previous === undefined ? [write] : [previous, write]).then(() => {
      if (this.pending.get(uid) === settled) this.pending.delete(uid)
    })
    this.pending.set(uid, settled)
  }

  /** Resolves once the flag writes for `uid` started so far have finished. */
  async settled(uid: string): Promise<void> {
    await this.pending.get(uid)
  }
}
