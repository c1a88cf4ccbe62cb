// Which messages make an event, on every store: one for a message stored for a recipient with
// no live connection (WebSocket or server-side send), none for one pushed to a live connection,
// none for a resend of a ref. Absence is shown without waiting: one request in flight at a
// time (WEBHOOK_CONCURRENCY=1) and events go oldest first, so an event that should not exist
// would reach the receiver before the later marker event the test awaits; and the outbox is
// empty once the marker is sent. A message held for a bind replay that is cut off gets its event.
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { eventually } from '../helpers/eventually.js'
import { gateCall } from '../helpers/gate.js'
import { STORE_KINDS, storeUrl } from '../helpers/stores.js'
import { TestClient } from '../helpers/ws-client.js'
import { send, serverSend, settled, TOKEN, webhookConfig, webhooks } from './common.js'
import { eventOf, Receiver } from './receiver.js'

for (const kind of STORE_KINDS) {
  t.test(`${kind}: a message held for a bind replay that is then cut off gets its event`, async (t) => {
    const receiver = await Receiver.start(t)
    const { app, wsUrl } = await startApp(t, { ...webhookConfig(receiver), storeUrl: await storeUrl(t, kind) })
    const alice = await TestClient.bound(wsUrl, 'alice')
    t.teardown(() => alice.close())
    await send(alice, 'bob', 'before the bind')
    // bob's replay has read its page and waits: a live message now is held for after it.
    const page = gateCall(app.store, 'undelivered', 1, 'answer')
    const bob = await TestClient.bound(wsUrl, 'bob')
    await page.entered
    const held = await send(alice, 'bob', 'during the replay')
    await bob.close() // the replay is cut off: the held message reached no one
    page.release()
    await eventually(() => receiver.requests.some((r) => eventOf(r).message.mid === held.mid), 'the held message\'s event')
    const again = await TestClient.bound(wsUrl, 'bob')
    t.teardown(() => again.close())
    t.match(await again.next((f) => f.mid === held.mid), { code: 200, offline: true, msg: 'during the replay' }, 'and it comes with the next bind')
  })

  t.test(`${kind}: one event per message for an offline recipient, none for a live one`, async (t) => {
    const receiver = await Receiver.start(t)
    const { url, wsUrl } = await startApp(t, { ...webhookConfig(receiver, { webhookConcurrency: 1 }), storeUrl: await storeUrl(t, kind) })
    const alice = await TestClient.bound(wsUrl, 'alice')
    const bob = await TestClient.bound(wsUrl, 'bob')
    t.teardown(() => Promise.all([alice.close(), bob.close()]))

    // bob is live: pushed, no event.
    const live = await send(alice, 'bob', 'to bob, online')
    t.match(await bob.nextCode(200), { mid: live.mid, msg: 'to bob, online' }, 'pushed live')
    // carol has no connection: an event.
    const offline = await send(alice, 'carol', 'to carol, offline')
    const first = await receiver.eventFor('to carol, offline')
    t.equal(first.n, 1, 'the first request is the offline message’s: none came for the live one')
    t.same(eventOf(first).message, { mid: offline.mid, from: 'alice', to: 'carol', msg: 'to carol, offline', ts: offline.ts })
    t.equal((await settled(url, 0)).pending, 0, 'nothing else waits in the outbox')

    // A second offline message: its own event, and still none for the first again.
    const second = await send(alice, 'carol', 'to carol again')
    const next = await receiver.eventFor('to carol again')
    t.equal(next.n, 2)
    t.same(eventOf(next).message, { mid: second.mid, from: 'alice', to: 'carol', msg: 'to carol again', ts: second.ts })
    t.not(next.headers['duet-event-id'], first.headers['duet-event-id'], 'a new event id')
    await settled(url, 0)

    // bob gone: his next message has its event (written with it, or after a push that reached
    // no one), one only; the marker after it shows no second.
    await bob.close()
    const gone = await send(alice, 'bob', 'to bob, gone')
    t.same(eventOf(await receiver.eventFor('to bob, gone')).message, { mid: gone.mid, from: 'alice', to: 'bob', msg: 'to bob, gone', ts: gone.ts })
    await send(alice, 'carol', 'marker')
    t.equal((await receiver.eventFor('marker')).n, 4)
    await settled(url, 0)
    t.same(
      receiver.requests.map((r) => eventOf(r).message.msg),
      ['to carol, offline', 'to carol again', 'to bob, gone', 'marker'],
      'exactly one event per offline message',
    )
    t.equal(new Set(receiver.requests.map((r) => r.headers['duet-event-id'])).size, 4, 'four distinct event ids')
  })

  t.test(`${kind}: a server-side send to an offline user makes one event, its resend none`, async (t) => {
    const receiver = await Receiver.start(t)
    const { url } = await startApp(t, { ...webhookConfig(receiver, { webhookConcurrency: 1 }), storeUrl: await storeUrl(t, kind) })

    const sent = await serverSend(url, { from: 'system', to: 'dave', msg: 'for dave', ref: 'r1' })
    t.equal(sent.status, 201)
    const event = await receiver.nth(1)
    t.same(eventOf(event).message, { mid: sent.mid, from: 'system', to: 'dave', msg: 'for dave', ts: sent.ts }, "the 201's mid and ts")
    t.equal(event.headers['duet-event-id'], eventOf(event).id)
    await settled(url, 0)

    const resent = await serverSend(url, { from: 'system', to: 'dave', msg: 'for dave', ref: 'r1' })
    t.same(resent, { status: 200, mid: sent.mid, ts: sent.ts }, 'a resend: 200, the same mid')
    // The marker: a later event, awaited; the resend's would have come before it.
    const marker = await serverSend(url, { from: 'system', to: 'erin', msg: 'marker' })
    t.equal(marker.status, 201)
    const markerEvent = await receiver.eventFor('marker')
    t.equal(markerEvent.n, 2, 'the request after the first is the marker’s: the resend made no event')
    t.same(eventOf(markerEvent).message, { mid: marker.mid, from: 'system', to: 'erin', msg: 'marker', ts: marker.ts })
    await settled(url, 0)
    t.equal(receiver.requestsFor('for dave').length, 1, 'one event for the message, however often it was sent')
  })

  t.test(`${kind}: no event when WEBHOOK_URL is unset`, async (t) => {
    const { url, wsUrl } = await startApp(t, { adminToken: TOKEN, storeUrl: await storeUrl(t, kind) })
    const alice = await TestClient.bound(wsUrl, 'alice')
    t.teardown(() => alice.close())
    await send(alice, 'carol', 'nobody is told')
    // An event is written in the message's transaction, before the 204: it would show now.
    t.same(await webhooks(url), { pending: 0, failed: [], nextBefore: null }, 'no event written')
  })
}
