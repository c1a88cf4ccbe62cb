// Work the hub has started and not yet settled (binds, sends, joins, presence writes, a
// resync): shutdown waits for it, so in-flight store writes finish and their acks go out.
import type { Logger } from '../logger.js'

export class InFlight {
  private count = 0
  private readonly waiters: Array<() => void> = []

  constructor(private readonly logger: Logger) {}

  /** Counts the work until it settles: one `then` with shared handlers, no closure per frame. */
  track(work: Promise<void>): void {
    this.count++
    work.then(this.settled, this.failed)
  }

  /** Resolves once no tracked work is in flight. */
  idle(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve))
  }

  private readonly settled = (): void => {
    if (--this.count === 0) for (const resolve of this.waiters.splice(0)) resolve()
  }

  private readonly failed = (err: unknown): void => {
    this.logger.error({ err }, 'unexpected hub failure')
    this.settled()
  }
}
