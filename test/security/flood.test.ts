// A flood from one connection (in its own process, rate limit off: the worst case) must
// not slow another connection's messages beyond a bound: round trips between two quiet
// clients are measured without and with the flood, and compared in the same run.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { DEFAULT_RATE_LIMIT } from '../../src/config/schema.js'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'

const FLOODER = fileURLToPath(new URL('./flooder.js', import.meta.url))
const ROUND_TRIPS = 200
/**
 * A quiet client's round trip under flood must stay under these (ms). Without read
 * fairness its p50 was 0.4-2.5 s here; with it, p95 is 10-40 ms even with other tests
 * sharing the CPU.
 */
const P95_BOUND_MS = 150
const MAX_BOUND_MS = 1000

async function roundTrips(from: TestClient, to: TestClient, n: number): Promise<number[]> {
  const times: number[] = []
  for (let i = 0; i < n; i++) {
    const start = performance.now()
    const pushed = to.next((f) => f.code === 200 && f.msg === `rt${i}`)
    from.send({ type: 'send', touid: 'quiet-b', msg: `rt${i}` })
    await pushed
    times.push(performance.now() - start)
  }
  return times.sort((a, b) => a - b)
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!

t.test('a flooding connection does not starve a quiet one', async (t) => {
  const { wsUrl } = await startApp(t, { rateLimit: 0 })
  const a = await TestClient.bound(wsUrl, 'quiet-a')
  const b = await TestClient.bound(wsUrl, 'quiet-b')
  const baseline = await roundTrips(a, b, ROUND_TRIPS)

  const flooder = spawn(process.execPath, [FLOODER, wsUrl, 'flooder'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = createInterface({ input: flooder.stdout })[Symbol.asyncIterator]()
  t.teardown(() => flooder.kill('SIGKILL'))
  t.equal((await lines.next()).value, 'bound')
  const flooded = await roundTrips(a, b, ROUND_TRIPS)
  flooder.kill('SIGTERM')
  const counts = JSON.parse(String((await lines.next()).value)) as { sent: number; replies: number }

  const report = (name: string, s: number[]): string =>
    `${name}: p50 ${pct(s, 0.5).toFixed(2)} ms, p95 ${pct(s, 0.95).toFixed(2)} ms, max ${s[s.length - 1]!.toFixed(2)} ms`
  t.comment(report('baseline', baseline))
  t.comment(report('under flood', flooded))
  t.comment(`flooder: ${counts.sent} frames sent, ${counts.replies} replies during the measurement`)
  t.ok(counts.replies > 5 * ROUND_TRIPS, 'the flood was served while the quiet clients talked')
  t.ok(pct(flooded, 0.95) < P95_BOUND_MS, `p95 under flood < ${P95_BOUND_MS} ms`)
  t.ok(flooded[flooded.length - 1]! < MAX_BOUND_MS, `max under flood < ${MAX_BOUND_MS} ms`)
  await Promise.all([a.close(), b.close()])
})

t.test('with the default rate limit the flooder is cut off and the quiet pair never notices', async (t) => {
  const { wsUrl } = await startApp(t)
  const a = await TestClient.bound(wsUrl, 'quiet-a')
  const b = await TestClient.bound(wsUrl, 'quiet-b')
  const flooder = spawn(process.execPath, [FLOODER, wsUrl, 'flooder'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = createInterface({ input: flooder.stdout })[Symbol.asyncIterator]()
  t.teardown(() => flooder.kill('SIGKILL'))
  t.equal((await lines.next()).value, 'bound')
  // 50 round trips stay inside the quiet client's own burst.
  const during = await roundTrips(a, b, 50)
  const result = JSON.parse(String((await lines.next()).value)) as {
    sent: number
    replies: number
    acks: number
    closed?: number
    elapsedMs: number
  }
  t.equal(result.closed, 1008, 'flooder closed with 1008')
  // bind + the ceiling bucket (4 x the default burst of 2 x RATE_LIMIT), plus what it
  // refills (4 x RATE_LIMIT per second) while the flood lasts. The flooder's own clock
  // (first flood frame sent to close received) spans the server's window, so this is
  // an upper bound however slow the machine is.
  const ceiling = 1 + 4 * 2 * DEFAULT_RATE_LIMIT + 4 * DEFAULT_RATE_LIMIT * (result.elapsedMs / 1000)
  t.ok(
    result.replies <= ceiling,
    `at most the ceiling's worth of replies (${result.replies} <= ${Math.floor(ceiling)} in ${result.elapsedMs.toFixed(0)} ms)`,
  )
  // The bucket starts full (a burst of 2 x RATE_LIMIT); the bind took one token.
  t.ok(result.acks >= 2 * DEFAULT_RATE_LIMIT - 1, `the flooder's burst was stored before the cut (${result.acks} acks)`)
  t.ok(pct(during, 0.95) < P95_BOUND_MS, `quiet p95 ${pct(during, 0.95).toFixed(2)} ms`)
  await Promise.all([a.close(), b.close()])
})
