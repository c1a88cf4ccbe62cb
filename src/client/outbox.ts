// What the client writes to its socket, paced by a token bucket like the server's rate limit
// (RATE_LIMIT per second, RATE_BURST at once): past it the server answers 429 and, past four
// times it, closes the connection with 1008. The frames a re-bind sends again (every
// unanswered request, the watch list) would otherwise all go out in one turn. Frames past the
// bucket wait here, in order, and go out as it refills. A 429 says the server allows less than
// we assumed: the pace halves (once a second at most, however many 429s one burst drew), and
// stays so for later connections, which meet the same limit.

export interface PacingOptions {
  /** Frames per second, on average. */
  perSecond: number
  /** Frames that may go out at once. */
  burst: number
}

/** Half the server's defaults (200/s, burst 400), so that timing jitter never meets the limit. */
export const DEFAULT_PACING: PacingOptions = { perSecond: 100, burst: 200 }

const MIN_PER_SECOND = 1
/** 429s closer together than this are one verdict: a burst draws many. */
const SLOW_DOWN_EVERY_MS = 1000
/** Written frames are cut from the queue's front once this many have gone. */
const COMPACT_AFTER = 1024

const now = (): number => performance.now()

export class Outbox {
  private perSecond = Infinity
  private burst = Infinity
  private tokens = Infinity
  private refilledAt = 0
  private slowedAt = -Infinity
  private waiting: string[] = []
  /** The next of `waiting` to go: an index, so a long queue is not shifted frame by frame. */
  private head = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private write: ((data: string) => void) | null = null

  constructor(pacing: PacingOptions | false) {
    if (pacing === false) return
    const { perSecond, burst } = pacing
    if (!(Number.isFinite(perSecond) && perSecond > 0)) throw new RangeError(`pacing.perSecond must be a positive number, got ${perSecond}`)
    if (!(Number.isFinite(burst) && burst >= 1)) throw new RangeError(`pacing.burst must be a number of at least 1, got ${burst}`)
    this.perSecond = perSecond
    this.burst = burst
  }

  /** A new connection: a full bucket, nothing waiting. */
  open(write: (data: string) => void): void {
    this.close()
    this.write = write
    this.tokens = this.burst
    this.refilledAt = now()
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
    if (this.burst === Infinity) return
    this.tokens = Math.min(this.tokens, 0)
    const at = now()
    if (at - this.slowedAt < SLOW_DOWN_EVERY_MS) return
    this.slowedAt = at
    this.perSecond = Math.max(MIN_PER_SECOND, this.perSecond / 2)
    // The server's burst is twice its rate by default: ours stays within what we now assume.
    this.burst = Math.max(1, Math.min(this.burst, 2 * this.perSecond))
  }

  private flush(): void {
    // write() may close the socket (and so this outbox) under us: check it every turn.
    while (this.write !== null && this.head < this.waiting.length && this.take()) {
      const data = this.waiting[this.head]!
      this.waiting[this.head++] = '' // written: not kept alive by the queue
      this.write(data)
    }
    if (this.head === this.waiting.length) {
      this.waiting = []
      this.head = 0
    } else {
      if (this.head >= COMPACT_AFTER) {
        this.waiting = this.waiting.slice(this.head)
        this.head = 0
      }
      if (this.timer === undefined && this.write !== null) {
        this.timer = setTimeout(
          () => {
            this.timer = undefined
            this.flush()
          },
          Math.ceil(((1 - this.tokens) * 1000) / this.perSecond),
        )
      }
    }
  }

  private take(): boolean {
    if (this.burst === Infinity) return true
    const at = now()
    this.tokens = Math.min(this.burst, this.tokens + ((at - this.refilledAt) * this.perSecond) / 1000)
    this.refilledAt = at
    if (this.tokens < 1) return false
    this.tokens--
    return true
  }
}
