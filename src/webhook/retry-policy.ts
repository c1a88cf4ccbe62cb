// When a webhook try is worth repeating, and when: exponential backoff with jitter. The first
// retry comes 1 s ± 20 % after the first try, each gap doubles (± 20 %), and no gap passes
// 10 minutes. The jitter keeps a receiver that comes back from a flood of synchronized retries.

export const FIRST_GAP_MS = 1000
export const MAX_GAP_MS = 600_000
export const JITTER = 0.2

/** The gap before the next try, after `tries` failed ones (1 for the first retry). */
export function retryGap(tries: number, random: () => number = Math.random): number {
  // Capped before the jitter, so gaps at the cap still spread (8 to 10 minutes).
  const base = Math.min(MAX_GAP_MS, FIRST_GAP_MS * 2 ** Math.min(tries - 1, 30))
  return Math.min(MAX_GAP_MS, Math.round(base * (1 - JITTER + 2 * JITTER * random())))
}

/**
 * What an answer means. 2xx: delivered. 408, 429 and 5xx: the receiver may take it later.
 * Anything else (other 4xx, and 1xx or 3xx: redirects are not followed) will not change by
 * itself: the event fails at once.
 */
export function judgeStatus(status: number): 'sent' | 'retry' | 'failed' {
  if (status >= 200 && status < 300) return 'sent'
  if (status === 408 || status === 429 || status >= 500) return 'retry'
  return 'failed'
}
