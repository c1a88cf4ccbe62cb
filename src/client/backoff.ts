// Reconnect delays: exponential, capped, with jitter so that every client of a restarted
// server does not come back in the same millisecond.

export interface BackoffOptions {
  /** Delay before the first retry. */
  initialDelayMs: number
  /** Upper bound of any delay. */
  maxDelayMs: number
  /** Growth per failed attempt. */
  factor: number
  /** Fraction of the delay taken off at random: 0 = none, 1 = anywhere from 0 to the delay. */
  jitter: number
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialDelayMs: 500, maxDelayMs: 30_000, factor: 2, jitter: 0.5 }

/** The delay before retry number `attempt` (0 for the first retry). */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * options.factor ** attempt)
  return Math.round(ceiling * (1 - options.jitter * random()))
}
