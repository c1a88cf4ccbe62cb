// When a try fails: network errors, timeouts, 408, 429 and 5xx are retried with backoff (1 s
// ± 20 %, doubling, ± 20 %), the same event id and body each time, up to WEBHOOK_MAX_ATTEMPTS;
// any other 4xx fails the event at once. A failed event is listed by GET /admin/webhooks and
// sent again by POST /admin/webhooks/:id/retry.
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { eventually } from '../helpers/eventually.js'
import { freePort } from '../helpers/free-port.js'
import { TestClient } from '../helpers/ws-client.js'
import { retry, sample, scrape, send, SECRET, serverSend, settled, TOKEN, webhookConfig, webhooks } from './common.js'
import { eventOf, Receiver, type ReceivedRequest } from './receiver.js'

/** Scheduling slack on top of a gap's documented window: the claim, the request, a busy machine. */
const ALLOWANCE_MS = 400
/** Below a window: Date.now() (the dispatcher's clock) against performance.now() (the receiver's). */
const EARLY_MS = 20

const gaps = (requests: ReceivedRequest[]): number[] => requests.slice(1).map((r, i) => r.at - requests[i]!.at)

t.test('500, 500, 500, then 200: four tries of one event, the gaps doubling', async (t) => {
  const receiver = await Receiver.start(t)
  receiver.script(500, 500, 500, 200)
  const { url, wsUrl } = await startApp(t, webhookConfig(receiver))
  const alice = await TestClient.bound(wsUrl, 'alice')
  t.teardown(() => alice.close())
  const ack = await send(alice, 'bob', 'retried')

  await receiver.nth(4)
  await settled(url, 0)
  const tries = receiver.requests
  t.equal(tries.length, 4, 'exactly four tries')
  t.same(
    tries.map((r) => r.reply),
    [500, 500, 500, 200],
  )
  const id = tries[0]!.headers['duet-event-id']
  t.ok(
    tries.every((r) => r.headers['duet-event-id'] === id),
    'the same Duet-Event-Id each time',
  )
  t.ok(
    tries.every((r) => r.raw.equals(tries[0]!.raw)),
    'the same body bytes each time',
  )
  t.equal(eventOf(tries[0]!).id, id)
  t.match(eventOf(tries[0]!).message, { mid: ack.mid, ts: ack.ts })

  const [gap1, gap2, gap3] = gaps(tries) as [number, number, number]
  t.comment(`gaps: ${gap1.toFixed(0)} ms, ${gap2.toFixed(0)} ms, ${gap3.toFixed(0)} ms`)
  for (const [n, gap] of [gap1, gap2, gap3].entries()) {
    const base = 1000 * 2 ** n
    t.ok(gap >= base * 0.8 - EARLY_MS, `gap ${n + 1} (${gap.toFixed(0)} ms) ≥ ${base * 0.8} ms`)
    t.ok(gap <= base * 1.2 + ALLOWANCE_MS, `gap ${n + 1} (${gap.toFixed(0)} ms) ≤ ${base * 1.2} ms + ${ALLOWANCE_MS} ms`)
  }
  t.ok(gap2 > gap1, 'gap 2 > gap 1')
  t.ok(gap3 > gap2, 'gap 3 > gap 2')
  t.same(await webhooks(url), { pending: 0, failed: [], nextBefore: null })
})

t.test('408 and 429 are retried too', async (t) => {
  const receiver = await Receiver.start(t)
  receiver.script(408, 429, 200)
  const { url } = await startApp(t, webhookConfig(receiver))
  await serverSend(url, { from: 'system', to: 'bob', msg: 'later' })
  await receiver.nth(3)
  await settled(url, 0)
  t.same(
    receiver.requests.map((r) => r.reply),
    [408, 429, 200],
  )
  t.equal(new Set(receiver.requests.map((r) => r.headers['duet-event-id'])).size, 1, 'one event')
})

t.test('a 400 fails the event after one try; a retry sends it again, same id', async (t) => {
  const receiver = await Receiver.start(t)
  receiver.script(400)
  const { url } = await startApp(t, webhookConfig(receiver))
  const sent = await serverSend(url, { from: 'system', to: 'bob', msg: 'refused' })
  const first = await receiver.nth(1)
  const id = eventOf(first).id

  const page = await settled(url, 1, 'the event failed')
  t.equal(receiver.requests.length, 1, 'one try only')
  t.same(page.nextBefore, null)
  const failed = page.failed[0]!
  t.same(Object.keys(failed).sort(), ['attempts', 'id', 'lastAttemptAt', 'lastError', 'message', 'type'])
  t.match(failed, { id, type: 'message.offline', attempts: 1, lastError: 'HTTP 400' })
  t.same(failed.message, { mid: sent.mid, from: 'system', to: 'bob', msg: 'refused', ts: sent.ts })
  t.ok(Number.isInteger(failed.lastAttemptAt) && failed.lastAttemptAt >= sent.ts && failed.lastAttemptAt <= Date.now(), 'lastAttemptAt: ms, when tried')

  const requeued = await retry(url, id)
  t.equal(requeued.status, 200, 'POST retry')
  t.same(await requeued.json(), { id, requeued: true })
  const again = await receiver.nth(2)
  t.equal(again.headers['duet-event-id'], id, 'the same id')
  t.ok(again.raw.equals(first.raw), 'the same body')
  t.same(await settled(url, 0), { pending: 0, failed: [], nextBefore: null }, 'sent: pending 0, failed empty')

  // Sent, it cannot be retried; nor can an unknown id or a malformed one.
  const sentRetry = await retry(url, id)
  t.equal(sentRetry.status, 409)
  t.match(await sentRetry.json(), { statusCode: 409, code: 'DUET_WEBHOOK_EVENT_NOT_FAILED' })
  const unknown = await retry(url, `${id.split('-')[0]}-999999`)
  t.equal(unknown.status, 404)
  t.match(await unknown.json(), { statusCode: 404, code: 'DUET_WEBHOOK_EVENT_NOT_FOUND' })
  const malformed = await retry(url, 'not-an-event-id')
  t.equal(malformed.status, 400)
  t.match(await malformed.json(), { statusCode: 400 })
  t.equal((await fetch(`${url}/admin/webhooks/${id}/retry`, { method: 'POST' })).status, 401, 'admin only')
  t.equal((await fetch(`${url}/admin/webhooks`)).status, 401, 'admin only')
})

t.test('a pending event cannot be retried: 409', async (t) => {
  const receiver = await Receiver.start(t, { responder: () => 503 })
  const { url } = await startApp(t, webhookConfig(receiver))
  await serverSend(url, { from: 'system', to: 'bob', msg: 'waiting' })
  const id = eventOf(await receiver.nth(1)).id
  const res = await retry(url, id)
  t.equal(res.status, 409)
  t.match(await res.json(), { statusCode: 409, code: 'DUET_WEBHOOK_EVENT_NOT_FAILED' })
  t.equal((await webhooks(url)).pending, 1, 'still pending')
})

t.test('other 4xx and a redirect fail at once', async (t) => {
  const receiver = await Receiver.start(t)
  receiver.script(404, 410, 302)
  const { url } = await startApp(t, webhookConfig(receiver, { webhookConcurrency: 1 }))
  for (const msg of ['a', 'b', 'c']) await serverSend(url, { from: 'system', to: 'bob', msg })
  const page = await settled(url, 3, 'three failed events')
  t.equal(receiver.requests.length, 3, 'one try each')
  t.same(page.failed.map((f) => [f.message.msg, f.attempts, f.lastError]).sort(), [
    ['a', 1, 'HTTP 404'],
    ['b', 1, 'HTTP 410'],
    ['c', 1, 'HTTP 302'],
  ])
})

t.test('a request not answered within WEBHOOK_TIMEOUT_MS is dropped and retried', async (t) => {
  const receiver = await Receiver.start(t)
  receiver.script('hang', 200)
  const { url } = await startApp(t, webhookConfig(receiver, { webhookTimeoutMs: 300 }))
  await serverSend(url, { from: 'system', to: 'bob', msg: 'slow receiver' })
  const first = await receiver.nth(1)
  await first.closedUnanswered
  t.pass('the dispatcher gave up on the unanswered request')
  const second = await receiver.nth(2)
  t.equal(second.headers['duet-event-id'], first.headers['duet-event-id'], 'the same event')
  t.ok(second.raw.equals(first.raw), 'the same body')
  const gap = second.at - first.at
  t.ok(gap >= 300 + 800 - EARLY_MS, `retried after the timeout and a backoff (${gap.toFixed(0)} ms)`)
  await settled(url, 0)
  t.equal(receiver.requests.length, 2)
})

t.test('a timeout on the last try fails the event, saying so', async (t) => {
  const receiver = await Receiver.start(t)
  receiver.script('hang')
  const { url } = await startApp(t, webhookConfig(receiver, { webhookTimeoutMs: 300, webhookMaxAttempts: 1 }))
  await serverSend(url, { from: 'system', to: 'bob', msg: 'never answered' })
  const page = await settled(url, 1, 'the event failed')
  t.match(page.failed[0], { attempts: 1, lastError: 'no answer within 300 ms', message: { msg: 'never answered' } })
  t.equal(receiver.requests.length, 1)
})

t.test('WEBHOOK_MAX_ATTEMPTS=2 with 503s: failed after two tries', async (t) => {
  const receiver = await Receiver.start(t, { responder: () => 503 })
  const { url } = await startApp(t, webhookConfig(receiver, { webhookMaxAttempts: 2 }))
  const sent = await serverSend(url, { from: 'system', to: 'bob', msg: 'unavailable' })
  await receiver.nth(2)
  const page = await settled(url, 1, 'the event failed')
  t.equal(receiver.requests.length, 2, 'two tries, no third')
  t.equal(receiver.requests[1]!.headers['duet-event-id'], receiver.requests[0]!.headers['duet-event-id'])
  t.match(page.failed[0], { attempts: 2, lastError: 'HTTP 503', message: { mid: sent.mid } })

  // A retry gives it a fresh count of tries: two more.
  t.equal((await retry(url, page.failed[0]!.id)).status, 200)
  await receiver.nth(4)
  const again = await settled(url, 1, 'failed again')
  t.match(again.failed[0], { id: page.failed[0]!.id, attempts: 2, lastError: 'HTTP 503' })
  t.equal(receiver.requests.length, 4)
})

t.test('a receiver that cannot be reached is retried (network error)', async (t) => {
  const port = await freePort()
  const { url } = await startApp(t, { adminToken: TOKEN, webhookUrl: `http://127.0.0.1:${port}/hook`, webhookSecret: SECRET })
  await serverSend(url, { from: 'system', to: 'bob', msg: 'unreachable at first' })
  // The first try met a refused connection and was scheduled again.
  await eventually(async () => (sample(await scrape(url), 'duet_webhook_retries_total') ?? 0) >= 1, 'a retry after a refused connection')
  t.equal((await webhooks(url)).pending, 1, 'still pending')
  const receiver = await Receiver.start(t, { port })
  const request = await receiver.nth(1)
  t.match(eventOf(request).message, { msg: 'unreachable at first' })
  await settled(url, 0)
})

// Each event keeps its own schedule: the dispatcher's one timer, once fired, is set again for
// the next due event (found in the outbox), not left to the 1 s poll.
t.test(
  'two events failing together are each retried 1 s ± 20 % after their first try',
  async (t) => {
    const seen = new Map<string, number>()
    const receiver = await Receiver.start(t, {
      responder: (request) => {
        const msg = eventOf(request).message.msg
        const n = (seen.get(msg) ?? 0) + 1
        seen.set(msg, n)
        return n === 1 ? 500 : 200
      },
    })
    const { url } = await startApp(t, webhookConfig(receiver))
    await serverSend(url, { from: 'system', to: 'bob', msg: 'one' })
    await serverSend(url, { from: 'system', to: 'bob', msg: 'two' })
    await settled(url, 0)
    for (const msg of ['one', 'two']) {
      const [gap] = gaps(receiver.requestsFor(msg))
      t.ok(gap! >= 800 - EARLY_MS && gap! <= 1200 + ALLOWANCE_MS, `${msg}: first retry ${gap!.toFixed(0)} ms after the first try`)
    }
  },
)

// With WEBHOOK_CONCURRENCY=1 one failure is a whole round: claims pause for about a second,
// and the retry goes out when both the pause and its own gap are over, not at the next poll.
t.test(
  'with WEBHOOK_CONCURRENCY=1 the first retry comes 1 s ± 20 % after the first try',
  async (t) => {
    const gapsSeen: number[] = []
    for (let run = 0; run < 3; run++) {
      const receiver = await Receiver.start(t)
      receiver.script(500, 200)
      const { url, app } = await startApp(t, webhookConfig(receiver, { webhookConcurrency: 1 }))
      await serverSend(url, { from: 'system', to: 'bob', msg: `run ${run}` })
      await receiver.nth(2)
      await settled(url, 0)
      gapsSeen.push(gaps(receiver.requests)[0]!)
      await app.close()
      await receiver.close()
    }
    t.comment(`first gaps: ${gapsSeen.map((g) => g.toFixed(0)).join(', ')} ms`)
    for (const gap of gapsSeen) t.ok(gap >= 800 - EARLY_MS && gap <= 1200 + ALLOWANCE_MS, `first retry ${gap.toFixed(0)} ms after the first try`)
  },
)
