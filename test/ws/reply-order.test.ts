// Replies keep frame order (docs/PROTOCOL.md, "Replies keep frame order"): each frame takes its
// reply's slot on arrival, so a reply that waits for the store (a send's 204, a join's 202, a
// bind's 201) holds back the replies of later frames, errors and 429s included; what is held
// counts against SLOW_CONSUMER_BYTES; a message to yourself follows its own 204 on the sending
// connection but reaches your other connections at once.
import t from 'tap'
import type { Hub } from '../../src/hub/hub.js'
import { startApp } from '../helpers/app.js'
import { answered, gateCall } from '../helpers/gate.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'

/** The next `n` frames, in the order they arrive. */
async function nextFrames(c: TestClient, n: number): Promise<Frame[]> {
  const out: Frame[] = []
  while (out.length < n) out.push(await c.next())
  return out
}

/**
 * Resolves once a ping sent now is answered: the server reads it after the frames sent before
 * it, and its pong follows whatever the server wrote for those, so a reply sent too early has
 * arrived by then.
 */
function roundTrip(c: TestClient): Promise<void> {
  return new Promise((resolve) => {
    c.socket.once('pong', () => resolve())
    c.socket.ping()
  })
}

/** Resolves once the hub has taken `n` more frames from its connections, handled or refused. */
function framesTaken(hub: Hub, n: number): Promise<void> {
  let left = n
  return new Promise((resolve) => {
    const counted = (): void => {
      if (--left === 0) resolve()
    }
    const handle = hub.handle.bind(hub)
    const refuse = hub.refuse.bind(hub)
    hub.handle = (...args) => {
      handle(...args)
      counted()
    }
    hub.refuse = (...args) => {
      refuse(...args)
      counted()
    }
  })
}

/** Sends a join to `marker` and resolves once the server has handled it, and so every frame before it. */
async function handled(hub: Hub, c: TestClient, marker: string): Promise<void> {
  const taken = framesTaken(hub, 1)
  c.send({ type: 'join', touid: marker, ref: marker })
  await taken
}

t.test('every reply keeps frame order, even while a join waits for the store', async (t) => {
  const { app, url, wsUrl } = await startApp(t)
  const alice = await TestClient.bound(wsUrl, 'alice')
  const bob = await TestClient.bound(wsUrl, 'bob')
  await alice.request({ type: 'send', touid: 'bob', msg: 'unread' })
  const { entered, release } = gateCall(app.store, 'markRead', 1)
  bob.send({ type: 'join', touid: 'alice', ref: 'j' })
  await entered // the join is waiting for the store
  bob.send({ type: 'exit', ref: 'e' })
  bob.send({ type: 'send', msg: 'no touid', ref: 'bad' })
  bob.send({ type: 'nope', ref: 'unknown' })
  await handled(app.hub, bob, 'carol')
  await roundTrip(bob)
  t.same(bob.frames.filter((f) => f.code !== 200), [], 'no reply before the join is answered')
  release()
  const replies = (await nextFrames(bob, 6)).filter((f) => f.code !== 200) // not the message pushed to bob
  t.same(
    replies.map((f) => [f.code, f.ref]),
    [
      [202, 'j'],
      [203, 'e'],
      [400, 'bad'],
      [404, 'unknown'],
      [202, 'carol'],
    ],
    'replies in frame order',
  )
  const sessions = (await (await fetch(`${url}/admin/sessions`)).json()) as { sessions: Array<{ uid: string; joined: string | null }> }
  t.equal(sessions.sessions.find((s) => s.uid === 'bob')?.joined, 'carol', 'the last frame decides what is open')
  await Promise.all([alice.close(), bob.close()])
})

t.test('an error reply waits for the 204 of a send before it', async (t) => {
  const { app, wsUrl } = await startApp(t)
  const alice = await TestClient.bound(wsUrl, 'alice')
  const { entered, release } = gateCall(app.store, 'append', 1)
  alice.send({ type: 'send', touid: 'bob', msg: 'hi', ref: 's' })
  await entered
  alice.send({ type: 'nope', ref: 'unknown' })
  await handled(app.hub, alice, 'zed')
  await roundTrip(alice)
  t.same(alice.frames, [], 'no reply before the send is stored')
  release()
  t.same(
    (await nextFrames(alice, 3)).map((f) => [f.code, f.ref]),
    [
      [204, 's'],
      [404, 'unknown'],
      [202, 'zed'],
    ],
    'replies in frame order',
  )
  await alice.close()
})

t.test('a message to yourself behind a pending reply: 204 before its 200', async (t) => {
  const { app, wsUrl } = await startApp(t)
  const alice = await TestClient.bound(wsUrl, 'alice')
  const { entered, release } = gateCall(app.store, 'markRead', 1)
  alice.send({ type: 'join', touid: 'bob', ref: 'j' })
  await entered
  const stored = answered(app.store, 'append', 1)
  alice.send({ type: 'send', touid: 'alice', msg: 'note to self', ref: 's' })
  await stored // stored and acked, the ack held behind the 202
  await roundTrip(alice)
  t.same(alice.frames, [], 'neither the ack nor the message before the 202')
  release()
  t.same(
    (await nextFrames(alice, 3)).map((f) => [f.code, f.ref ?? '']),
    [
      [202, 'j'],
      [204, 's'],
      [200, ''],
    ],
    'join reply, ack, then the message',
  )
  await alice.close()
})

t.test('a 429 and a binary frame refused during a bind wait for its 201, in arrival order', async (t) => {
  // One token per 1000 s: the burst is all there is during the test.
  const { app, wsUrl } = await startApp(t, { rateLimit: 0.001, rateBurst: 4 })
  const c = await TestClient.connect(wsUrl)
  const { entered, release } = gateCall(app.store, 'headMid', 1)
  c.send({ type: 'bind', uid: 'alice', ref: 'b' })
  await entered // the bind waits for the store; what follows is queued or refused
  const taken = framesTaken(app.hub, 4)
  c.send({ type: 'send', touid: 'bob', msg: 'one', ref: 's1' })
  c.sendRaw(Buffer.from('binary'), true)
  c.send({ type: 'send', touid: 'bob', msg: 'two', ref: 's2' })
  c.send({ type: 'join', touid: 'bob', ref: 'over' }) // the fifth frame: over the burst
  await taken
  await roundTrip(c)
  t.same(c.frames, [], 'nothing before the 201')
  release()
  t.same(
    (await nextFrames(c, 5)).map((f) => [f.code, f.ref ?? '']),
    [
      [201, 'b'],
      [204, 's1'],
      [400, ''],
      [204, 's2'],
      [429, 'over'],
    ],
    'replies in arrival order',
  )
  await c.close()
})

t.test('replies held behind a pending send count against SLOW_CONSUMER_BYTES', async (t) => {
  const { app, wsUrl } = await startApp(t, { rateLimit: 0, slowConsumerBytes: 4096 })
  const c = await TestClient.bound(wsUrl, 'alice')
  const { entered, release } = gateCall(app.store, 'append', 1)
  t.teardown(release)
  c.send({ type: 'send', touid: 'bob', msg: 'held', ref: 's' })
  await entered
  // Each 404 is about 130 characters, all held behind the 204.
  for (let i = 0; i < 100; i++) c.send({ type: 'nope', ref: `r${i}` })
  const closed = await c.closed
  t.equal(closed.code, 1013, 'closed as a slow consumer')
  t.same(c.frames, [], 'nothing was sent out of order before the close')
})

t.test('a message to yourself reaches your other connections while its 204 waits', async (t) => {
  const { app, wsUrl } = await startApp(t, { multiDevice: true })
  const phone = await TestClient.bound(wsUrl, 'alice')
  const laptop = await TestClient.bound(wsUrl, 'alice')
  const { entered, release } = gateCall(app.store, 'markRead', 1)
  phone.send({ type: 'join', touid: 'bob', ref: 'j' })
  await entered
  phone.send({ type: 'send', touid: 'alice', msg: 'note to self', ref: 's' })
  t.match(await laptop.next(), { code: 200, msg: 'note to self' }, 'the other connection has it at once')
  await roundTrip(phone)
  t.same(phone.frames, [], 'the sending connection has nothing before its 202')
  release()
  t.same(
    (await nextFrames(phone, 3)).map((f) => [f.code, f.ref ?? '']),
    [
      [202, 'j'],
      [204, 's'],
      [200, ''],
    ],
    'join reply, ack, then the message',
  )
  await Promise.all([phone.close(), laptop.close()])
})

t.test('a connection closed for held replies while its bind queue is taken: the rest is dropped', async (t) => {
  const { app, wsUrl } = await startApp(t, { rateLimit: 0, slowConsumerBytes: 4096 })
  const c = await TestClient.connect(wsUrl)
  const binding = gateCall(app.store, 'headMid', 1)
  const write = gateCall(app.store, 'append', 1)
  t.teardown(() => {
    binding.release()
    write.release()
  })
  c.send({ type: 'bind', uid: 'alice' })
  await binding.entered
  const taken = framesTaken(app.hub, 102)
  // Queued behind the bind: a send whose write is held, enough 404s held behind its 204 to
  // pass the bound, and a send that must not be stored once the connection is closed.
  c.send({ type: 'send', touid: 'bob', msg: 'held', ref: 'a' })
  for (let i = 0; i < 100; i++) c.send({ type: 'nope', ref: `r${i}` })
  c.send({ type: 'send', touid: 'bob', msg: 'after the close', ref: 'b' })
  await taken
  binding.release()
  t.equal((await c.closed).code, 1013, 'closed as a slow consumer')
  write.release()
  let stored = await app.store.history('alice', 'bob', null, 10)
  while (stored.length === 0) stored = await app.store.history('alice', 'bob', null, 10) // the held write lands
  t.same(
    stored.map((m) => m.msg),
    ['held'],
    'the send queued after the close was not stored',
  )
})
