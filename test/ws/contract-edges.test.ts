// Edges of docs/PROTOCOL.md that the other tests leave open: Retry-After on refused
// upgrades, the `type` of long unknown types and binary frames, `since` ahead of the
// store, the order of a `since` replay that also carries never-pushed older messages, a reply
// owed when the close frame comes in the same read, a recipient who binds or leaves while a
// message to them is being stored, a message held during a bind replay, a replay that marks
// only what it sent, and a bind that comes while the previous replay's delivered marks are
// being written. (Reply order is in reply-order.test.ts.)
// (Frames sent between bind and its 201 are covered in test/ws/codes.test.ts.)
import http from 'node:http'
import t, { type Test } from 'tap'
import type { Config } from '../../src/config/schema.js'
import { startApp } from '../helpers/app.js'
import { eventually } from '../helpers/eventually.js'
import { gateCall } from '../helpers/gate.js'
import { RawClient, rawUpgrade } from '../helpers/raw-ws.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'

/** Retry-After is delay-seconds or an HTTP-date (RFC 9110 §10.2.3). */
function assertRetryAfter(t: Test, headers: http.IncomingHttpHeaders): void {
  const value = headers['retry-after']
  t.type(value, 'string', 'Retry-After is set')
  if (typeof value === 'string') {
    t.ok(/^\d+$/.test(value) || !Number.isNaN(Date.parse(value)), `Retry-After is seconds or a date (${value})`)
  }
}

/** Disconnects `uid`'s session over the admin route: the server forgets it before answering. */
async function kick(t: Test, url: string, uid: string, client: TestClient): Promise<void> {
  const list = (await (await fetch(`${url}/admin/sessions`)).json()) as { sessions: Array<{ id: string; uid: string }> }
  const session = list.sessions.find((s) => s.uid === uid)
  if (session === undefined) throw new Error(`${uid} has no session`)
  t.equal((await fetch(`${url}/admin/sessions/${session.id}`, { method: 'DELETE' })).status, 204, `${uid} disconnected`)
  t.equal((await client.closed).code, 4001)
}

/** Asserts nothing else is queued or on its way: a request's reply is the next frame. */
async function assertNothingMore(t: Test, c: TestClient, what: string): Promise<void> {
  const reply = await c.request({ type: 'exit' })
  t.equal(reply.code, 203)
  t.same(c.frames, [], what)
}

t.test('upgrade refusals carry Retry-After', async (t) => {
  const cases: Array<[string, Partial<Config>, number]> = [
    ['429 past MAX_CONNECTIONS_PER_IP', { maxConnectionsPerIp: 2 }, 429],
    ['503 past MAX_CONNECTIONS', { maxConnections: 2 }, 503],
  ]
  for (const [name, limits, status] of cases) {
    t.test(name, async (t) => {
      const { wsUrl } = await startApp(t, limits)
      const first = await TestClient.connect(wsUrl)
      const second = await rawUpgrade(wsUrl)
      t.equal(second.status, 101, 'the raw upgrade is accepted while under the limit')
      const refused = await rawUpgrade(wsUrl)
      t.equal(refused.status, status)
      assertRetryAfter(t, refused.headers)
      second.socket?.destroy()
      await first.close()
    })
  }
})

t.test('a reply owed when the close frame comes in the same read is written before the close', async (t) => {
  const { wsUrl } = await startApp(t)
  const c = await RawClient.connect(wsUrl)
  t.teardown(() => c.socket.destroy())
  // One chunk: a frame that gets an error reply at once, then the close frame, which ws answers
  // in the same read, before the turn's batched frames are written.
  c.write(RawClient.text({ type: 'nonsense' }), RawClient.close())
  t.match(await c.nextJson(), { type: 'nonsense', error: true, code: 404 })
  await c.closeFrame()
})

t.test('a bind still queued when its connection is reset binds no one: no ghost online', async (t) => {
  const { url, wsUrl } = await startApp(t, { rateLimit: 0 })
  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`${url}/metrics`)).text()
    return Number(new RegExp(`^${name}\\{[^}]*\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN)
  }
  const client = await RawClient.connect(wsUrl)
  // Many more frames than the server reads for a connection in one turn, the bind last, all in
  // one TCP read: the reset comes while the bind waits, and the close runs what still waits.
  const exit = RawClient.text({ type: 'exit' })
  client.write(...Array<Buffer>(2000).fill(exit), RawClient.text({ type: 'bind', uid: 'ghost' }))
  client.socket.resetAndDestroy()
  await eventually(async () => (await metric('duet_connections')) === 0, 'the server saw the connection go')
  const online = (await (await fetch(`${url}/admin/online`)).json()) as { uids: string[] }
  t.notOk(online.uids.includes('ghost'), 'not online')
  const sessions = (await (await fetch(`${url}/admin/sessions`)).json()) as { sessions: Array<{ uid: string }> }
  t.same(sessions.sessions, [], 'no session')
  t.equal(await metric('duet_online_users'), 0)
})

t.test('an unknown type longer than 32 characters: 404 with type ""', async (t) => {
  const { wsUrl } = await startApp(t)
  const c = await TestClient.bound(wsUrl, 'ursula')
  const long = 'y'.repeat(33)
  t.match(await c.request({ type: long }), { type: '', error: true, code: 404, uid: 'ursula', touid: '' })
  const atLimit = 'z'.repeat(32)
  t.match(await c.request({ type: atLimit }), { type: atLimit, error: true, code: 404 }, '32 characters are still echoed')
  t.match(await c.request({ type: 'x'.repeat(10_000) }), { type: '', code: 404 })
  t.match(await c.request({ type: 'send', touid: 'victor', msg: 'still usable' }), { code: 204 })
  t.same(c.frames, [], 'one reply per frame')
  await c.close()
})

t.test('a binary frame: one 400 with type "", the connection stays open', async (t) => {
  const { wsUrl } = await startApp(t)
  const c = await TestClient.bound(wsUrl, 'wanda')
  const reply = c.next()
  c.sendRaw(Buffer.from(JSON.stringify({ type: 'send', touid: 'xena', msg: 'as binary', ref: 'b-1' })), true)
  const frame: Frame = await reply
  t.match(frame, { type: '', error: true, code: 400, uid: 'wanda', touid: '' })
  t.notOk('ref' in frame, 'a binary frame is not read, so no ref is echoed')
  t.match(await c.request({ type: 'send', touid: 'xena', msg: 'as text' }), { code: 204 })
  t.same(c.frames, [], 'exactly one reply to the binary frame')
  await c.close()
})

/** alice and bob bound; bob gets one message live ("seen"), then is disconnected. */
async function seenThenOffline(t: Test): Promise<{ wsUrl: string; alice: TestClient }> {
  const { url, wsUrl } = await startApp(t)
  const alice = await TestClient.bound(wsUrl, 'alice')
  const bob = await TestClient.bound(wsUrl, 'bob')
  // Pushed live: delivered, so neither a plain bind nor a reset bind sends it again.
  const seen = await alice.request({ type: 'send', touid: 'bob', msg: 'seen' })
  t.match(await bob.nextCode(200), { msg: 'seen', mid: seen.mid })
  await kick(t, url, 'bob', bob)
  return { wsUrl, alice }
}

t.test('bind with since ahead of the store: reset, and undelivered messages still pushed', async (t) => {
  const { wsUrl, alice } = await seenThenOffline(t)
  const one = await alice.request({ type: 'send', touid: 'bob', msg: 'one' })
  const two = await alice.request({ type: 'send', touid: 'bob', msg: 'two' })

  const back = await TestClient.connect(wsUrl)
  back.send({ type: 'bind', uid: 'bob', since: '999999' })
  t.match(await back.next(), { type: 'bind', code: 201, mid: two.mid, reset: true })
  t.match(await back.next(), { code: 200, msg: 'one', mid: one.mid, offline: true })
  t.match(await back.next(), { code: 200, msg: 'two', mid: two.mid, offline: true })
  await assertNothingMore(t, back, 'nothing replayed by since: the delivered message is not sent')
  const far = await TestClient.connect(wsUrl)
  const huge = '9'.repeat(30)
  t.match(await far.request({ type: 'bind', uid: 'bob', since: huge }), { code: 201, mid: two.mid, reset: true }, 'beyond any int64: reset too')
  t.match(await far.request({ type: 'bind', uid: 'bob', since: '9'.repeat(65) }), { code: 400 }, 'past 64 digits: refused')
  await Promise.all([back.close(), far.close(), alice.close()])
})

t.test('bind with since: never-pushed messages at or below since first, then everything above, ascending', async (t) => {
  const { wsUrl, alice } = await seenThenOffline(t)
  // Stored while bob is offline: never pushed.
  const mids: string[] = []
  for (const msg of ['u1', 'u2', 'u3', 'u4']) mids.push((await alice.request({ type: 'send', touid: 'bob', msg })).mid!)

  // since = u2: u1 and u2 are at or below it but were never pushed; u3 and u4 are above it.
  const back = await TestClient.connect(wsUrl)
  back.send({ type: 'bind', uid: 'bob', since: mids[1] })
  const bound = await back.next()
  t.match(bound, { type: 'bind', code: 201, mid: mids[3] })
  t.notOk(bound.reset, 'since is known to the store: no reset')
  for (const [i, msg] of ['u1', 'u2', 'u3', 'u4'].entries()) {
    t.match(await back.next(), { code: 200, msg, uid: 'alice', touid: 'bob', mid: mids[i], offline: true })
  }
  await assertNothingMore(t, back, 'each once, and the delivered message at or below since is not replayed')
  await back.close()

  // Every one of them has been pushed now: a plain bind sends nothing old.
  const again = await TestClient.bound(wsUrl, 'bob')
  await assertNothingMore(t, again, 'no second offline push')
  await Promise.all([again.close(), alice.close()])
})

// Races between a message's write and its recipient's bind or departure, on the memory store
// and on SQLite, whose flag updates wait for a commit.
for (const storeUrl of ['memory:', 'sqlite::memory:']) {
  t.test(`${storeUrl} a recipient who binds while the message is being stored gets it once`, async (t) => {
    const { app, wsUrl } = await startApp(t, { storeUrl })
    const alice = await TestClient.bound(wsUrl, 'alice')
    const { entered, release } = gateCall(app.store, 'append')
    const ack = alice.request({ type: 'send', touid: 'bob', msg: 'during the bind' })
    await entered // bob was offline when the hub looked: stored as not yet pushed
    const bob = await TestClient.bound(wsUrl, 'bob')
    release()
    const { mid } = await ack
    t.match(await bob.nextCode(200), { msg: 'during the bind', mid }, 'pushed live')
    const again = await TestClient.bound(wsUrl, 'bob')
    await assertNothingMore(t, again, 'not pushed a second time at the next bind')
    await Promise.all([again.close(), alice.close()])
  })

  t.test(`${storeUrl} a recipient who leaves while the message is being stored gets it at the next bind`, async (t) => {
    const { app, url, wsUrl } = await startApp(t, { storeUrl })
    const alice = await TestClient.bound(wsUrl, 'alice')
    const bob = await TestClient.bound(wsUrl, 'bob')
    const { entered, release } = gateCall(app.store, 'append')
    const ack = alice.request({ type: 'send', touid: 'bob', msg: 'while leaving' })
    await entered // bob was online when the hub looked: stored as pushed
    await kick(t, url, 'bob', bob)
    release()
    const { mid } = await ack
    const back = await TestClient.bound(wsUrl, 'bob')
    t.match(await back.request({ type: 'exit' }), { code: 203 })
    t.match(back.frames, [{ code: 200, msg: 'while leaving', mid, offline: true }], 'pushed at the bind, before the exit reply')
    await Promise.all([back.close(), alice.close()])
  })

  t.test(`${storeUrl} a message that arrives during a bind replay which is then cut off is pushed at the next bind`, async (t) => {
    const { app, url, wsUrl } = await startApp(t, { storeUrl })
    const alice = await TestClient.bound(wsUrl, 'alice')
    const replay = gateCall(app.store, 'undelivered')
    const bob = await TestClient.bound(wsUrl, 'bob')
    await replay.entered // bob's replay is under way: live messages are held for after it
    const { mid } = await alice.request({ type: 'send', touid: 'bob', msg: 'during the replay' })
    await kick(t, url, 'bob', bob) // the replay is cut off, and what it held with it
    replay.restore()
    replay.release()
    const back = await TestClient.bound(wsUrl, 'bob')
    t.match(await back.request({ type: 'exit' }), { code: 203 })
    t.match(back.frames, [{ code: 200, msg: 'during the replay', mid, offline: true }], 'not lost')
    await Promise.all([back.close(), alice.close()])
  })

  t.test(`${storeUrl} a message held during a bind replay is pushed after it, and not again at the next bind`, async (t) => {
    const { app, wsUrl } = await startApp(t, { storeUrl })
    const alice = await TestClient.bound(wsUrl, 'alice')
    const first = await alice.request({ type: 'send', touid: 'bob', msg: 'offline' })
    const marking = gateCall(app.store, 'markDelivered')
    const bob = await TestClient.connect(wsUrl)
    bob.send({ type: 'bind', uid: 'bob' })
    t.match(await bob.next(), { code: 201 })
    t.match(await bob.next(), { code: 200, mid: first.mid, offline: true })
    await marking.entered // the replay's page is out, the replay not yet over: live pushes are held
    const held = await alice.request({ type: 'send', touid: 'bob', msg: 'held' })
    marking.restore()
    marking.release()
    t.match(await bob.next(), { code: 200, mid: held.mid, msg: 'held' }, 'pushed once the replay is over')
    const again = await TestClient.bound(wsUrl, 'bob')
    t.match(await again.request({ type: 'exit' }), { code: 203 })
    t.same(again.frames, [], 'neither message is pushed again')
    await Promise.all([bob.closed, again.close(), alice.close()])
  })

  t.test(`${storeUrl} a replay marks only what it sent: a message whose push failed meanwhile waits for the next bind`, async (t) => {
    const { app, url, wsUrl } = await startApp(t, { storeUrl })
    const alice = await TestClient.bound(wsUrl, 'alice')
    const bob = await TestClient.bound(wsUrl, 'bob')
    // The first message is stored as pushed (bob is online); it is pushed once its write answers.
    const write = gateCall(app.store, 'append', 1, 'answer')
    const first = alice.request({ type: 'send', touid: 'bob', msg: 'push failed' })
    await write.entered
    await kick(t, url, 'bob', bob)
    // From carol: alice's next ack waits for the first one (replies keep frame order).
    const carol = await TestClient.bound(wsUrl, 'carol')
    const second = await carol.request({ type: 'send', touid: 'bob', msg: 'offline' })
    const marking = gateCall(app.store, 'markDelivered')
    const replaying = await TestClient.connect(wsUrl)
    replaying.send({ type: 'bind', uid: 'bob' })
    t.match(await replaying.next(), { code: 201 })
    t.match(await replaying.next(), { code: 200, mid: second.mid, offline: true })
    await marking.entered // the page is out, its mark not yet written
    write.release() // the first message's push is only held by the replay: set back to undelivered
    const { mid } = await first
    await kick(t, url, 'bob', replaying) // and the replay is cut off with it
    marking.release()
    const back = await TestClient.bound(wsUrl, 'bob')
    t.match(await back.request({ type: 'exit' }), { code: 203 })
    t.match(back.frames, [{ code: 200, mid, msg: 'push failed', offline: true }], 'pushed at the next bind, not lost')
    await Promise.all([back.close(), alice.close(), carol.close()])
  })

  t.test(`${storeUrl} a bind the moment the previous replay is out waits for its delivered marks`, async (t) => {
    const { app, wsUrl } = await startApp(t, { storeUrl })
    const alice = await TestClient.bound(wsUrl, 'alice')
    const { mid } = await alice.request({ type: 'send', touid: 'bob', msg: 'offline' })
    const marking = gateCall(app.store, 'markDelivered')
    const bob = await TestClient.connect(wsUrl)
    bob.send({ type: 'bind', uid: 'bob' })
    t.match(await bob.next(), { code: 201 })
    t.match(await bob.next(), { code: 200, mid, offline: true })
    await marking.entered // the replay is out; its delivered mark is not yet written
    const again = await TestClient.connect(wsUrl)
    again.send({ type: 'bind', uid: 'bob' })
    t.match(await again.next(), { code: 201 })
    marking.release()
    t.match(await again.request({ type: 'exit' }), { code: 203 })
    t.same(again.frames, [], 'the replayed message is not pushed again')
    await Promise.all([bob.closed, again.close(), alice.close()])
  })
}
