// The outbox as an operator sees it: /metrics counts this node's tries by outcome (sent,
// retried, failed), their latency, and the pending events; GET /admin/webhooks pages the
// failed events newest first (limit, before = nextBefore), on every store.
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { eventually } from '../helpers/eventually.js'
import { STORE_KINDS, storeUrl } from '../helpers/stores.js'
import { sample, scrape, serverSend, settled, TOKEN, webhookConfig, webhooks } from './common.js'
import { eventOf, parseEvent, Receiver } from './receiver.js'

t.test('metrics after a sent event, a retried one and a failed one', async (t) => {
  // 'ok': 200; 'flaky': 500 then 200; 'bad': 400.
  const tried = new Map<string, number>()
  const receiver = await Receiver.start(t, {
    responder: (request) => {
      const msg = parseEvent(request)?.message.msg ?? ''
      const n = (tried.get(msg) ?? 0) + 1
      tried.set(msg, n)
      if (msg === 'bad') return 400
      if (msg === 'flaky' && n === 1) return 500
      return 200
    },
  })
  const { url } = await startApp(t, webhookConfig(receiver))

  const before = await scrape(url)
  for (const name of ['duet_webhook_events_pending', 'duet_webhook_events_sent_total', 'duet_webhook_events_failed_total', 'duet_webhook_retries_total']) {
    t.equal(sample(before, name), 0, `${name} 0 at start`)
  }
  t.equal(sample(before, 'duet_webhook_request_seconds_count'), 0)

  for (const msg of ['ok', 'flaky', 'bad']) await serverSend(url, { from: 'system', to: 'bob', msg })
  await receiver.waitFor((r) => parseEvent(r)?.message.msg === 'flaky' && r.reply === 200)
  await settled(url, 1, 'two sent, one failed')
  t.equal(receiver.requests.length, 4)

  const after = await scrape(url)
  t.equal(sample(after, 'duet_webhook_events_sent_total'), 2, 'sent: ok and flaky')
  t.equal(sample(after, 'duet_webhook_retries_total'), 1, "retries: flaky's 500")
  t.equal(sample(after, 'duet_webhook_events_failed_total'), 1, 'failed: bad')
  t.equal(sample(after, 'duet_webhook_events_pending'), 0)
  t.equal(sample(after, 'duet_webhook_request_seconds_count'), 4, 'one latency sample per try')
  t.match(after, /^duet_webhook_request_seconds_bucket\{[^}]*le="\+Inf"[^}]*\} 4$/m, 'the histogram’s +Inf bucket')
  t.ok((sample(after, 'duet_webhook_request_seconds_sum') ?? -1) >= 0)
  t.match(after, /^# TYPE duet_webhook_events_sent_total counter$/m)
  t.match(after, /^# TYPE duet_webhook_events_pending gauge$/m)
})

t.test('the pending gauge counts an event waiting for its next try', async (t) => {
  const receiver = await Receiver.start(t, { responder: () => 503 })
  const { url } = await startApp(t, webhookConfig(receiver))
  await serverSend(url, { from: 'system', to: 'bob', msg: 'waiting' })
  await receiver.nth(1)
  const metrics = await eventually(async () => {
    const text = await scrape(url)
    return (sample(text, 'duet_webhook_retries_total') ?? 0) >= 1 ? text : undefined
  }, 'the first 503 counted')
  t.equal(sample(metrics, 'duet_webhook_events_pending'), 1)
  t.equal(sample(metrics, 'duet_webhook_events_sent_total'), 0)
  t.equal((await webhooks(url)).pending, 1)
})

t.test('no webhook metrics without WEBHOOK_URL', async (t) => {
  const { url } = await startApp(t, { adminToken: TOKEN })
  t.notMatch(await scrape(url), /duet_webhook_/)
})

for (const kind of STORE_KINDS) {
  t.test(`${kind}: failed events page newest first`, async (t) => {
    const receiver = await Receiver.start(t, { responder: () => 400 })
    const { url } = await startApp(t, { ...webhookConfig(receiver, { webhookConcurrency: 1 }), storeUrl: await storeUrl(t, kind) })
    for (const msg of ['a', 'b', 'c']) await serverSend(url, { from: 'system', to: 'bob', msg })
    const all = await settled(url, 3, 'three failed events')
    t.same(
      all.failed.map((f) => f.message.msg),
      ['c', 'b', 'a'],
      'newest first',
    )
    t.equal(all.nextBefore, null)
    const ids = new Map(receiver.requests.map((r) => [eventOf(r).message.msg, eventOf(r).id]))
    t.same(
      all.failed.map((f) => f.id),
      ['c', 'b', 'a'].map((m) => ids.get(m)),
      'the ids the receiver got',
    )

    const page1 = await webhooks(url, '?limit=1')
    t.same(
      page1.failed.map((f) => f.message.msg),
      ['c'],
    )
    t.equal(page1.nextBefore, page1.failed[0]!.id)
    t.equal(page1.pending, 0)
    const page2 = await webhooks(url, `?limit=1&before=${page1.nextBefore}`)
    t.same(
      page2.failed.map((f) => f.message.msg),
      ['b'],
    )
    t.equal(page2.nextBefore, page2.failed[0]!.id)
    const page3 = await webhooks(url, `?limit=1&before=${page2.nextBefore}`)
    t.same(
      page3.failed.map((f) => f.message.msg),
      ['a'],
    )
    t.equal(page3.nextBefore, null, 'the last page')

    const two = await webhooks(url, '?limit=2')
    t.same(
      two.failed.map((f) => f.message.msg),
      ['c', 'b'],
    )
    const rest = await webhooks(url, `?limit=2&before=${two.nextBefore}`)
    t.same(
      rest.failed.map((f) => f.message.msg),
      ['a'],
    )
    t.equal(rest.nextBefore, null)

    // A cursor of this store above every mid, up to int64's largest and past it: every event is older.
    const tag = all.failed[0]!.id.split('-')[0]!
    for (const mid of ['9007199254740993', '9223372036854775806', '9223372036854775807', '99999999999999999999']) {
      const above = await webhooks(url, `?before=${tag}-${mid}`)
      t.same(
        above.failed.map((f) => f.message.msg),
        ['c', 'b', 'a'],
        `before ${mid}`,
      )
      const retry = await fetch(`${url}/admin/webhooks/${tag}-${mid}/retry`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
      t.equal(retry.status, 404, `retry of ${mid}: no such event`)
    }

    for (const query of ['?limit=0', '?before=nope', '?limit=x', '?limit=-Infinity', '?limit=1e400']) {
      const res = await fetch(`${url}/admin/webhooks${query}`, { headers: { authorization: `Bearer ${TOKEN}` } })
      t.equal(res.status, 400, query)
    }
  })
}
