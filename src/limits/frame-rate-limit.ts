// Per-connection frame rate limit: a token bucket with a burst, plus a ceiling bucket
// CEILING_FACTOR times larger and faster. Frames over the first bucket are refused (429);
// a connection that drains the ceiling too is sending at several times the limit for
// long enough that it is abuse, not a burst, and is closed. Two numbers updated per
// frame: no timers, no allocation.

export const CEILING_FACTOR = 4

export type RateVerdict = 'ok' | 'limited' | 'abuse'

export class FrameRateLimit {
  private tokens: number
  private ceilingTokens: number
  private last: number
  private readonly perMs: number
  private readonly ceilingBurst: number

  constructor(
    perSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.perMs = perSecond / 1000
    this.ceilingBurst = burst * CEILING_FACTOR
    this.tokens = burst
    this.ceilingTokens = this.ceilingBurst
    this.last = now
  }

  /** Takes one frame at time `now` (ms, monotonic). */
  take(now: number): RateVerdict {
    const refill = (now - this.last) * this.perMs
    this.last = now
    this.tokens = Math.min(this.burst, this.tokens + refill)
    this.ceilingTokens = Math.min(this.ceilingBurst, this.ceilingTokens + refill * CEILING_FACTOR)
    if (this.ceilingTokens < 1) return 'abuse'
    this.ceilingTokens -= 1
    if (this.tokens < 1) return 'limited'
    this.tokens -= 1
    return 'ok'
  }

  /**
   * Gives back the frame just taken to the first bucket: it was dropped unprocessed (a
   * throttled typing notice) and must not cost a 429. The ceiling keeps it: a flood of such
   * frames is still a flood, and is closed with 1008.
   */
  refund(): void {
    this.tokens = Math.min(this.burst, this.tokens + 1)
  }
}
