// DELETE /admin/users/:uid takes the user's webhook events with their messages, on every
// store: pending ones (the receiver answers 503, so they wait) and failed ones, whether the
// user sent or received the message; other users' events stay.
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { STORE_KINDS, storeUrl } from '../helpers/stores.js'
import { admin, retry, serverSend, webhookConfig, webhooks } from './common.js'
import { eventually } from '../helpers/eventually.js'
import { eventOf, parseEvent, Receiver } from './receiver.js'

for (const kind of STORE_KINDS) {
  t.test(`${kind}: an erase removes the user's events`, async (t) => {
    // Messages to bob wait (503); the one from bob fails at once (400).
    const receiver = await Receiver.start(t, { responder: (request) => (parseEvent(request)?.message.from === 'bob' ? 400 : 503) })
    const { url } = await startApp(t, { ...webhookConfig(receiver), storeUrl: await storeUrl(t, kind) })

    await serverSend(url, { from: 'system', to: 'bob', msg: 'to bob 1' })
    await serverSend(url, { from: 'alice', to: 'bob', msg: 'to bob 2' })
    await serverSend(url, { from: 'bob', to: 'erin', msg: 'from bob' })
    await serverSend(url, { from: 'system', to: 'carol', msg: 'to carol' })
    const toBob = eventOf(await receiver.eventFor('to bob 1')).id
    const carols = eventOf(await receiver.eventFor('to carol')).id
    const before = await eventually(async () => {
      const page = await webhooks(url)
      return page.failed.length === 1 ? page : undefined
    }, "bob's message to erin failed")
    t.equal(before.pending, 3, 'pending: two to bob, one to carol')
    t.match(before.failed, [{ message: { from: 'bob', msg: 'from bob' } }])
    const fromBob = before.failed[0]!.id

    const erased = await fetch(`${url}/admin/users/bob`, { method: 'DELETE', headers: admin })
    t.equal(erased.status, 200)
    t.same(await erased.json(), { deleted: 3 })

    const after = await webhooks(url)
    t.equal(after.pending, 1, "only carol's event waits")
    t.same(after.failed, [], "bob's failed event went too")
    t.equal((await retry(url, toBob)).status, 404, "bob's pending event is unknown now")
    t.equal((await retry(url, fromBob)).status, 404, "bob's failed event is unknown now")
    t.equal((await retry(url, carols)).status, 409, "carol's is still there, pending")

    // Nothing of bob's is tried after the erase: carol's next try comes, and no try of bob's
    // arrived after the erase had answered (one already on the wire then would be no bug).
    const erasedAt = performance.now()
    await receiver.waitFor((r) => r.at > erasedAt && eventOf(r).message.to === 'carol')
    t.same(
      receiver.requests.filter((r) => r.at > erasedAt && eventOf(r).message.to !== 'carol').map((r) => eventOf(r).message.msg),
      [],
      'only carol’s event is tried again',
    )
  })
}
