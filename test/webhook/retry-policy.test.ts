// The retry schedule and the answers it retries: the gaps the issue fixes (1 s ± 20 %, doubling,
// ± 20 %, at most 10 minutes, still spread at the cap) at the extremes of the jitter.
import t from 'tap'
import { judgeStatus, retryGap } from '../../src/webhook/retry-policy.js'

const low = (): number => 0
const high = (): number => 1 - Number.EPSILON

t.test('gaps double from 1 s, ± 20 %, capped at 10 minutes but still spread there', async (t) => {
  for (let tries = 1; tries <= 9; tries++) {
    const base = 1000 * 2 ** (tries - 1)
    t.equal(retryGap(tries, low), Math.round(base * 0.8), `after ${tries} tries, at least 0.8×`)
    t.equal(retryGap(tries, high), Math.round(base * 1.2), `after ${tries} tries, at most 1.2×`)
  }
  t.equal(retryGap(10, high), 600_000, '512 s × 1.2 is over the cap: 10 minutes')
  for (const tries of [11, 20, 1000]) {
    t.equal(retryGap(tries, low), 480_000, `after ${tries} tries the gap still spreads down to 8 minutes`)
    t.equal(retryGap(tries, high), 600_000, `after ${tries} tries, never over 10 minutes`)
  }
})

t.test('2xx is sent; 408, 429 and 5xx are retried; every other answer fails', async (t) => {
  for (const status of [200, 201, 204, 299]) t.equal(judgeStatus(status), 'sent', String(status))
  for (const status of [408, 429, 500, 502, 503, 599]) t.equal(judgeStatus(status), 'retry', String(status))
  for (const status of [100, 301, 302, 400, 401, 404, 410, 422]) t.equal(judgeStatus(status), 'failed', String(status))
})
