// Group commit: writes submitted in the same tick, or while a batch is committing, share
// one transaction, so one fsync acknowledges many of them. Batches run one at a time and
// in submission order, which keeps a markRead behind the append submitted before it.

export interface QueuedWrite {
  /** Rejects the write's promise; called when its batch could not run at all. */
  fail(error: unknown): void
}

/** Commits one batch and settles each write in it; sync (SQLite) or async (PostgreSQL). */
export type CommitBatch<W> = (batch: W[]) => void | Promise<void>

export class WriteBatcher<W extends QueuedWrite> {
  private queue: W[] = []
  private scheduled = false
  private busy = false
  private readonly idleWaiters: Array<() => void> = []

  constructor(
    private readonly commit: CommitBatch<W>,
    private readonly maxBatch: number,
  ) {}

  push(write: W): void {
    this.queue.push(write)
    if (this.busy) return // taken as soon as the batch in flight settles
    if (this.queue.length >= this.maxBatch) this.flush()
    else if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => {
        this.scheduled = false
        this.flush()
      })
    }
  }

  /** Resolves once every write pushed so far has settled. */
  drain(): Promise<void> {
    if (!this.busy && this.queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  private flush(): void {
    while (!this.busy && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch)
      let pending: void | Promise<void>
      try {
        pending = this.commit(batch)
      } catch (error) {
        for (const write of batch) write.fail(error)
        continue
      }
      if (pending instanceof Promise) {
        this.busy = true
        void pending
          .catch((error: unknown) => {
            for (const write of batch) write.fail(error)
          })
          .finally(() => {
            this.busy = false
            this.flush()
          })
        return
      }
    }
    if (!this.busy && this.queue.length === 0) for (const resolve of this.idleWaiters.splice(0)) resolve()
  }
}
