// What the client writes to its socket, paced by a token bucket like the server's rate limit
// (RATE_LIMIT per second, RATE_BURST at once): past it the server answers 429 and, past four
// times it, closes the connection with 1008. The frames a re-bind sends again (every
// unanswered request, the watch list) would otherwise all go out in one turn. Frames past the
// bucket wait here, in order, and go out as it refills. A 429 halves the pace for the rest of
// the connection: the server's limit is lower than ours.

export interface PacingOptions {
  /** Frames per second, on average. */
  perSecond: number
  /** Frames that may go out at once. */
  burst: number
}

/** Half the server's defaults (200/s, burst 400), so that timing jitter never meets the limit. */
export const DEFAULT_PACING: PacingOptions = { perSecond: 100, burst: 200 }

const MIN_PER_SECOND = 1

export class Outbox {
  private perSecond: number
  private tokens: number
  private refilledAt = 0
  private waiting: string[] = []
  /** The next of `waiting` to go: an index, so a long queue is not shifted frame by frame. */
  private head = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private write: ((data: string) => void) | null = null

  constructor(private readonly pacing: PacingOptions | false) {
    this.perSecond = pacing === false ? Infinity : pacing.perSecond
    this.tokens = pacing === false ? Infinity : pacing.burst
  }

  /** A new connection: a full bucket, the configured pace, nothing waiting. */
  open(write: (data: string) => void): void {
    this.close()
    this.write = write
    if (this.pacing === false) return
    this.perSecond = this.pacing.perSecond
    this.tokens = this.pacing.burst
    this.refilledAt = Date.now()
  }

  /** The connection is gone: what waits is dropped (the client sends it again after the next bind). */
  close(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.waiting = []
    this.head = 0
    this.write = null
  }

  /** Writes `data` now, or after what waits before it. */
  push(data: string): void {
    if (this.write === null) return
    this.waiting.push(data)
    this.flush()
  }

  /** Writes `data` only if it can go now (a typing notice is worth nothing later). */
  offer(data: string): boolean {
    if (this.write === null || this.head < this.waiting.length || !this.take()) return false
    this.write(data)
    return true
  }

  /** The server said 429: it allows less than we assumed. */
  slowDown(): void {
    if (this.pacing !== false) this.perSecond = Math.max(MIN_PER_SECOND, this.perSecond / 2)
  }

  private flush(): void {
    // write() may close the socket (and so this outbox) under us: check it every turn.
    while (this.write !== null && this.head < this.waiting.length && this.take()) this.write(this.waiting[this.head++]!)
    if (this.head === this.waiting.length) {
      this.waiting = []
      this.head = 0
    } else if (this.timer === undefined && this.write !== null) {
      const wait = Math.ceil((1 - this.tokens) * (1000 / this.perSecond))
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.flush()
      }, wait)
    }
  }

  private take(): boolean {
    if (this.pacing === false) return true
    const now = Date.now()
    this.tokens = Math.min(this.pacing.burst, this.tokens + ((now - this.refilledAt) * this.perSecond) / 1000)
    this.refilledAt = now
    if (this.tokens < 1) return false
    this.tokens--
    return true
  }
}
