// The opt-in signals on one node (docs/PROTOCOL.md, Signals): features echoed and a seed
// bind's 201 unchanged byte for byte; receipts (live, replay, join, read on arrival) as
// high-water marks that never go down and match the REST fields; READ_RECEIPTS=false; typing
// throttled, unanswered and outside the rate limit; presence watch/unwatch and its limits;
// carbons and a carbons replay with `since`. A connection without a feature gets none of its frames.
import t, { type Test } from 'tap'
import type { Config } from '../../src/config/schema.js'
import { startApp } from '../helpers/app.js'
import { eventually } from '../helpers/eventually.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'

/** Connects and binds with `features`; resolves with the client and the raw text of its 201. */
async function bindRaw(wsUrl: string, frame: Record<string, unknown>): Promise<{ client: TestClient; raw: string }> {
  const client = await TestClient.connect(wsUrl)
  const raw = new Promise<string>((resolve) => client.socket.once('message', (data) => resolve(data.toString())))
  client.send({ type: 'bind', ...frame })
  const text = await raw
  await client.nextCode(201)
  return { client, raw: text }
}

/** Asserts nothing but what is listed arrived before a reply to a fresh request: a round trip as a fence. */
async function fence(c: TestClient): Promise<Frame[]> {
  const reply = await c.request({ type: 'exit' })
  if (reply.code !== 203) throw new Error(`fence: ${JSON.stringify(reply)}`)
  return c.frames.splice(0)
}

type Conversations = { conversations: Array<{ peer: string; unread: number; peerDelivered: string; peerRead: string }> }

async function marksOf(url: string, uid: string, peer: string): Promise<{ peerDelivered: string; peerRead: string }> {
  const body = (await (await fetch(`${url}/users/${uid}/conversations`)).json()) as Conversations
  const row = body.conversations.find((c) => c.peer === peer)
  if (row === undefined) throw new Error(`no conversation ${uid}–${peer}`)
  return { peerDelivered: row.peerDelivered, peerRead: row.peerRead }
}

/** Receipts of one kind as a client keeps them: each must be above the last. */
function assertRising(t: Test, frames: Frame[], what: string): void {
  for (const kind of ['delivered', 'read']) {
    const mids = frames.filter((f) => f.code === 205 && f.msg === kind).map((f) => BigInt(f.mid!))
    t.ok(
      mids.every((mid, i) => i === 0 || mid > mids[i - 1]!),
      `${what}: ${kind} marks only go up (${mids.join(', ')})`,
    )
  }
}

const app = (t: Test, config: Partial<Config> = {}) => startApp(t, { rateLimit: 0, ...config })

t.test('features: echoed when asked for, absent otherwise; a seed bind is byte for byte unchanged', async (t) => {
  const { wsUrl } = await app(t)
  const seed = await bindRaw(wsUrl, { uid: 'alice' })
  t.equal(seed.raw, '{"type":"bind","error":false,"code":201,"msg":"bound","uid":"alice","touid":"","mid":"0"}')
  const withRef = await bindRaw(wsUrl, { uid: 'carol', ref: 'b1', since: '0' })
  t.equal(withRef.raw, '{"type":"bind","error":false,"code":201,"msg":"bound","uid":"carol","touid":"","ref":"b1","mid":"0"}')

  const asked = await bindRaw(wsUrl, { uid: 'bob', features: ['receipts', 'emoji', 'typing', 'receipts', 'carbons', 'presence'] })
  t.same(JSON.parse(asked.raw).features, ['receipts', 'typing', 'carbons', 'presence'], 'unknown and repeated names dropped')
  t.equal(JSON.parse(asked.raw).maxMessageLength, 4096, 'a client that asked for features learns MAX_MESSAGE_LENGTH')
  const none = await bindRaw(wsUrl, { uid: 'dave', features: [] })
  t.same(JSON.parse(none.raw).features, [], 'an empty list is echoed empty')

  const bad = await TestClient.connect(wsUrl)
  t.match(await bad.request({ type: 'bind', uid: 'erin', features: 'receipts' }), { code: 400, msg: /^features: / })
  t.match(await bad.request({ type: 'bind', uid: 'erin', features: Array(17).fill('typing') }), { code: 400, msg: 'features: must have at most 16 items' })
  await Promise.all([seed.client.close(), withRef.client.close(), asked.client.close(), none.client.close(), bad.close()])
})

t.test('carbons is offered with MULTI_DEVICE', async (t) => {
  const { wsUrl } = await app(t, { multiDevice: true })
  const { client, raw } = await bindRaw(wsUrl, { uid: 'alice', features: ['carbons'] })
  t.same(JSON.parse(raw).features, ['carbons'])
  await client.close()
})

t.test('receipts: delivered live and on replay, read on join and on arrival; marks rise and match REST', async (t) => {
  const { url, wsUrl } = await app(t, { multiDevice: true })
  const alice = await TestClient.bound(wsUrl, 'alice', { features: ['receipts'] })
  const seedAlice = await TestClient.bound(wsUrl, 'alice') // no features: never a 205
  const bob = await TestClient.bound(wsUrl, 'bob') // produces receipts without asking for any

  const m1 = (await alice.request({ type: 'send', touid: 'bob', msg: 'one' })).mid!
  t.match(await bob.nextCode(200), { mid: m1 })
  t.match(await alice.nextCode(205), { type: 'receipt', error: false, code: 205, msg: 'delivered', uid: 'bob', touid: 'alice', mid: m1 })
  t.same(await marksOf(url, 'alice', 'bob'), { peerDelivered: m1, peerRead: '0' })

  t.match(await bob.request({ type: 'join', touid: 'alice' }), { code: 202 })
  t.match(await alice.nextCode(205), { msg: 'read', uid: 'bob', touid: 'alice', mid: m1 })
  t.same(await marksOf(url, 'alice', 'bob'), { peerDelivered: m1, peerRead: m1 })

  // Read on arrival: bob has the conversation open.
  const m2 = (await alice.request({ type: 'send', touid: 'bob', msg: 'two' })).mid!
  await bob.nextCode(200)
  const got: Frame[] = []
  while (!got.some((f) => f.msg === 'read' && f.mid === m2)) got.push(await alice.nextCode(205))
  t.same(await marksOf(url, 'alice', 'bob'), { peerDelivered: m2, peerRead: m2 })

  // Offline: stored, then delivered by the replay at bob's next bind; read only at a join.
  await bob.close()
  const m3 = (await alice.request({ type: 'send', touid: 'bob', msg: 'three' })).mid!
  const m4 = (await alice.request({ type: 'send', touid: 'bob', msg: 'four' })).mid!
  t.same(await marksOf(url, 'alice', 'bob'), { peerDelivered: m2, peerRead: m2 }, 'nothing delivered while bob is away')
  const bob2 = await TestClient.bound(wsUrl, 'bob')
  while (!got.some((f) => f.msg === 'delivered' && f.mid === m4)) got.push(await alice.nextCode(205))
  t.notOk(got.some((f) => f.msg === 'read' && BigInt(f.mid!) > BigInt(m2)), 'a replay is not a read')
  // The replay marks its page delivered once written: the receipt may be a moment ahead of the row.
  await eventually(async () => (await marksOf(url, 'alice', 'bob')).peerDelivered === m4, 'peerDelivered to follow the replay')
  t.same(await marksOf(url, 'alice', 'bob'), { peerDelivered: m4, peerRead: m2 })
  await bob2.request({ type: 'join', touid: 'alice' })
  while (!got.some((f) => f.msg === 'read' && f.mid === m4)) got.push(await alice.nextCode(205))
  t.same(await marksOf(url, 'alice', 'bob'), { peerDelivered: m4, peerRead: m4 })
  t.ok(BigInt(m3) < BigInt(m4))

  // A join with nothing new to read sends no lower mark.
  await bob2.request({ type: 'exit' })
  await bob2.request({ type: 'join', touid: 'alice' })
  got.push(...(await fence(alice)).filter((f) => f.code === 205))
  assertRising(t, got, 'alice')

  // bob's view of the conversation: he sent nothing.
  t.same(await marksOf(url, 'bob', 'alice'), { peerDelivered: '0', peerRead: '0' })
  t.same((await fence(seedAlice)).filter((f) => f.code === 205), [], 'the connection without the feature got no receipt')
  await Promise.all([alice.close(), seedAlice.close(), bob2.close()])
})

t.test('receipts: a reconnecting sender reads what it missed from REST', async (t) => {
  const { url, wsUrl } = await app(t)
  const alice = await TestClient.bound(wsUrl, 'alice', { features: ['receipts'] })
  const bob = await TestClient.bound(wsUrl, 'bob')
  const m1 = (await alice.request({ type: 'send', touid: 'bob', msg: 'hi' })).mid!
  await alice.nextCode(205)
  await alice.close()
  await bob.request({ type: 'join', touid: 'alice' })
  t.same(await marksOf(url, 'alice', 'bob'), { peerDelivered: m1, peerRead: m1 }, 'the read alice was away for is in the list')
  await bob.close()
})

t.test('READ_RECEIPTS=false: delivered receipts only', async (t) => {
  const { wsUrl } = await app(t, { readReceipts: false })
  const alice = await TestClient.bound(wsUrl, 'alice', { features: ['receipts'] })
  const bob = await TestClient.bound(wsUrl, 'bob')
  const m1 = (await alice.request({ type: 'send', touid: 'bob', msg: 'one' })).mid!
  t.match(await alice.nextCode(205), { msg: 'delivered', mid: m1 })
  await bob.request({ type: 'join', touid: 'alice' })
  const m2 = (await alice.request({ type: 'send', touid: 'bob', msg: 'two' })).mid!
  t.match(await alice.nextCode(205), { msg: 'delivered', mid: m2 })
  t.same((await fence(alice)).filter((f) => f.msg === 'read'), [], 'no read receipt')
  await Promise.all([alice.close(), bob.close()])
})

t.test('typing: no reply, one per pair per second, only to connections that asked, outside the rate limit', async (t) => {
  const { wsUrl } = await app(t, { multiDevice: true, rateLimit: 1, rateBurst: 5 })
  const alice = await TestClient.bound(wsUrl, 'alice')
  const bob = await TestClient.bound(wsUrl, 'bob', { features: ['typing'] })
  const seedBob = await TestClient.bound(wsUrl, 'bob')
  // Twice the burst: past it as typing costs nothing, under the ceiling (4 x the burst), which counts them.
  for (let i = 0; i < 10; i++) alice.send({ type: 'typing', touid: 'bob', ref: `t${i}` })
  // A send after them is still within the rate: the dropped ones were given back.
  const ack = await alice.request({ type: 'send', touid: 'bob', msg: 'done typing' })
  t.equal(ack.code, 204, 'dropped typing frames do not count toward 429')
  t.same(alice.frames, [], 'typing frames get no reply')
  t.match(await bob.nextCode(206), { type: 'typing', error: false, code: 206, msg: '', uid: 'alice', touid: 'bob' })
  await bob.nextCode(200)
  t.same(bob.frames.filter((f) => f.code === 206), [], 'one per second')
  await seedBob.nextCode(200)
  t.same(seedBob.frames, [], 'the connection without the feature got no typing')

  const unbound = await TestClient.connect(wsUrl)
  t.match(await unbound.request({ type: 'typing', touid: 'bob' }), { code: 402, type: 'typing' })
  t.match(await alice.request({ type: 'typing', touid: '' }), { code: 400, type: 'typing', msg: /^touid: / })
  t.match(await alice.request({ type: 'typing', uid: 'mallory', touid: 'bob' }), { code: 405 })
  await Promise.all([alice.close(), bob.close(), seedBob.close(), unbound.close()])
})

t.test('presence: watch answers the state and follows it; unwatch; the feature and the limit', async (t) => {
  const { wsUrl } = await app(t, { maxWatched: 2 })
  const alice = await TestClient.bound(wsUrl, 'alice', { features: ['presence'] })
  const plain = await TestClient.bound(wsUrl, 'carol')
  t.match(await plain.request({ type: 'watch', touid: 'bob' }), { code: 400, type: 'watch', msg: /presence feature/ })
  t.match(await plain.request({ type: 'unwatch', touid: 'bob' }), { code: 400, type: 'unwatch', msg: /presence feature/ }, 'no 208 either')

  t.match(await alice.request({ type: 'watch', touid: 'bob' }), {
    type: 'presence',
    error: false,
    code: 207,
    msg: 'offline',
    uid: 'bob',
    touid: 'alice',
  })
  const bob = await TestClient.bound(wsUrl, 'bob')
  t.match(await alice.nextCode(207), { msg: 'online', uid: 'bob', touid: 'alice' })
  await bob.close()
  t.match(await alice.nextCode(207), { msg: 'offline', uid: 'bob' })

  t.match(await alice.request({ type: 'watch', touid: 'carol' }), { code: 207, msg: 'online', uid: 'carol' })
  t.match(await alice.request({ type: 'watch', touid: 'bob' }), { code: 207, msg: 'offline' }, 'watching again is not one more')
  t.match(await alice.request({ type: 'watch', touid: 'dave' }), { code: 400, msg: 'touid: at most 2 watched uids per connection (MAX_WATCHED)' })
  t.match(await alice.request({ type: 'unwatch', touid: 'bob' }), {
    type: 'unwatch',
    error: false,
    code: 208,
    msg: 'unwatched',
    uid: 'alice',
    touid: 'bob',
  })
  const back = await TestClient.bound(wsUrl, 'bob')
  t.same((await fence(alice)).filter((f) => f.code === 207), [], 'no 207 after unwatch')
  t.same((await fence(plain)).filter((f) => f.code === 207), [], 'nothing for a connection without the feature')
  await Promise.all([alice.close(), plain.close(), back.close()])
})

t.test('carbons: the other devices that asked get what one sends; a resend by ref is the same message; since replays both', async (t) => {
  const { wsUrl } = await app(t, { multiDevice: true })
  const phone = await TestClient.bound(wsUrl, 'alice', { features: ['carbons'] })
  const laptop = await TestClient.bound(wsUrl, 'alice', { features: ['carbons'] })
  const tablet = await TestClient.bound(wsUrl, 'alice')
  const bob = await TestClient.bound(wsUrl, 'bob')

  const ack = await phone.request({ type: 'send', touid: 'bob', msg: 'from the phone', ref: 'r1' })
  t.match(await laptop.nextCode(200), { type: 'send', code: 200, msg: 'from the phone', uid: 'alice', touid: 'bob', mid: ack.mid, ts: ack.ts })
  await bob.nextCode(200)
  const again = await laptop.request({ type: 'send', touid: 'bob', msg: 'from the phone', ref: 'r1' })
  t.equal(again.mid, ack.mid, 'a resend from another device is the same message')
  t.same((await fence(phone)).filter((f) => f.code === 200), [], 'no carbon to the sender, none for the resend')
  t.same((await fence(tablet)).filter((f) => f.code === 200), [], 'none for the device without the feature')
  t.same((await fence(bob)).filter((f) => f.code === 200), [], 'bob got it once')

  // Recovery: a device that saw `since` gets what came to alice and what she sent since, in mid order.
  const since = ack.mid!
  const fromBob = (await bob.request({ type: 'send', touid: 'alice', msg: 'to alice' })).mid!
  const sent = (await phone.request({ type: 'send', touid: 'carol', msg: 'to carol' })).mid!
  const watch = await TestClient.connect(wsUrl)
  watch.send({ type: 'bind', uid: 'alice', since, features: ['carbons'] })
  const bound = await watch.nextCode(201)
  t.equal(bound.mid, sent, 'the position covers what alice sent')
  const replay = [await watch.nextCode(200), await watch.nextCode(200)]
  t.match(replay, [
    { mid: fromBob, uid: 'bob', touid: 'alice', offline: true },
    { mid: sent, uid: 'alice', touid: 'carol', offline: true },
  ])
  const seedReplay = await TestClient.connect(wsUrl)
  seedReplay.send({ type: 'bind', uid: 'alice', since })
  t.equal((await seedReplay.nextCode(201)).mid, fromBob, 'without carbons: the position of what came to alice')
  t.match(await seedReplay.nextCode(200), { mid: fromBob })
  t.same((await fence(seedReplay)).filter((f) => f.code === 200), [], 'and only that')
  await Promise.all([phone.close(), laptop.close(), tablet.close(), bob.close(), watch.close(), seedReplay.close()])
})
