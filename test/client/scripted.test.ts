// Client behaviour under timings a real server shows rarely, against a scripted socket:
// resend with the same ref, duplicate replays, reconnect backoff, final failures, the order of
// a send made as the state turns bound, receipt marks after a reset.
import t from 'tap'
import { backoffDelay, DEFAULT_BACKOFF, DuetClient, DuetError, type ChatMessage } from '../../src/client/index.js'
import { within } from '../helpers/eventually.js'
import { boundOnFake, FakeSocket } from './fake-socket.js'

const fast = { initialDelayMs: 1, maxDelayMs: 5 }

const boundClient = (since?: string): ReturnType<typeof boundOnFake> => boundOnFake({ reconnect: fast, ...(since ? { since } : {}) })

t.test('backoff grows, caps and jitters within bounds', async (t) => {
  const o = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 }
  t.equal(backoffDelay(0, o, () => 0), 100)
  t.equal(backoffDelay(3, o, () => 0), 800)
  t.equal(backoffDelay(10, o, () => 0), 1000, 'capped')
  t.equal(backoffDelay(10, o, () => 1), 500, 'jitter takes off at most half')
  t.ok(DEFAULT_BACKOFF.initialDelayMs > 0)
})

t.test('resend after a lost connection keeps the ref; re-bind carries since and re-joins', async (t) => {
  const { client, socket } = await boundClient()
  const joined = client.join('alice')
  const [, join] = await socket.sentCount(2)
  socket.push({ type: 'join', code: 202, uid: 'bob', touid: 'alice', ref: join!.ref })
  await joined
  socket.push({ type: 'send', code: 200, uid: 'alice', touid: 'bob', msg: 'hi', mid: '12', ts: 1 })

  const sending = client.send('alice', 'hello')
  const [, , send] = await socket.sentCount(3)
  t.match(send, { type: 'send', touid: 'alice', msg: 'hello', ref: String })

  const reconnected = FakeSocket.next()
  socket.drop()
  const second = await reconnected
  t.equal(client.state, 'reconnecting')
  second.open()
  const [bind] = await second.sentCount(1)
  t.match(bind, { type: 'bind', uid: 'bob', since: '12' }, 'since = the last mid seen')
  second.push({ type: 'bind', code: 201, uid: 'bob', mid: '14', ref: bind!.ref })
  const [, rejoin, resend] = await second.sentCount(3)
  t.match(rejoin, { type: 'join', touid: 'alice' }, 'the open conversation is joined again')
  t.same(resend, send, 'the unanswered send goes again with the same ref')
  second.push({ type: 'send', code: 204, uid: 'bob', touid: 'alice', mid: '13', ts: 2, ref: resend!.ref })
  t.equal(await sending, '13')
  t.equal(client.state, 'bound')
  client.close()
})

t.test('a message replayed twice is emitted once', async (t) => {
  const { client, socket } = await boundClient()
  const got: ChatMessage[] = []
  client.on('message', (m) => got.push(m))
  socket.push({ type: 'send', code: 200, uid: 'alice', touid: 'bob', msg: 'one', mid: '11', ts: 1 })
  socket.push({ type: 'send', code: 200, uid: 'alice', touid: 'bob', msg: 'one', mid: '11', ts: 1, offline: true })
  socket.push({ type: 'send', code: 200, uid: 'alice', touid: 'bob', msg: 'two', mid: '15', ts: 2, offline: true })
  t.same(got.map((m) => [m.mid, m.text, m.offline]), [['11', 'one', false], ['15', 'two', true]])
  t.equal(client.lastMid, '15')
  client.close()
})

t.test('reset: the position is the server head again', async (t) => {
  const created = FakeSocket.next()
  const client = new DuetClient({ url: 'ws://test/ws', uid: 'bob', WebSocket: FakeSocket, since: '99' })
  const connected = client.connect()
  const socket = await created
  socket.open()
  const [bind] = await socket.sentCount(1)
  t.match(bind, { since: '99' })
  socket.push({ type: 'bind', code: 201, uid: 'bob', mid: '7', reset: true, ref: bind!.ref })
  t.same(await connected, { uid: 'bob', mid: '7', reset: true, features: [] })
  t.equal(client.lastMid, '7')
  client.close()
})

t.test('send errors reject with the code; close rejects what is left', async (t) => {
  const { client, socket } = await boundClient()
  const tooLong = client.send('alice', 'x'.repeat(10))
  const [, send] = await socket.sentCount(2)
  socket.push({ type: 'send', error: true, code: 413, msg: 'msg: too long', ref: send!.ref })
  await t.rejects(tooLong, { name: 'DuetError', code: 413, message: 'msg: too long' })

  const unanswered = client.send('alice', 'never acked')
  client.close()
  await t.rejects(unanswered, { code: 0 })
  t.equal(client.state, 'closed')
})

for (const [code, reason] of [
  [4003, 'user erased by an administrator'],
  [1008, 'rate limit exceeded'],
] as const) {
  t.test(`close ${code} is final: no reconnect; pending requests reject with the code and error fires`, async (t) => {
    const { client, socket } = await boundClient()
    const errors: DuetError[] = []
    client.on('error', (e) => errors.push(e))
    const unanswered = client.send('alice', 'never acked')
    const before = FakeSocket.instances.length
    const closed = client.once('state')
    socket.close(code, reason)
    t.equal(await closed, 'closed')
    await t.rejects(unanswered, { code, message: new RegExp(`closed for good \\(${code}`) }, 'what was pending rejects, saying why')
    t.same(errors.map((e) => e.code), [code], 'error fires once')
    await new Promise(setImmediate)
    t.equal(FakeSocket.instances.length, before, 'no new socket')
  })
}

t.test('a bind refused as malformed (400) is final: connect rejects, no reconnect', async (t) => {
  const created = FakeSocket.next()
  const client = new DuetClient({ url: 'ws://test/ws', uid: 'u'.repeat(129), WebSocket: FakeSocket, reconnect: fast })
  const connecting = client.connect()
  const socket = await created
  socket.open()
  const [bind] = await socket.sentCount(1)
  const before = FakeSocket.instances.length
  socket.push({ type: 'bind', error: true, code: 400, msg: 'uid: must be at most 128 characters', ref: bind!.ref })
  await t.rejects(within(connecting, 5000, 'connect'), { code: 400 })
  t.equal(client.state, 'closed')
  await new Promise(setImmediate)
  t.equal(FakeSocket.instances.length, before, 'no new socket')
})

t.test('a send made when the state turns bound goes after the frames that waited, once', async (t) => {
  const { client, socket } = await boundClient()
  const reconnected = FakeSocket.next()
  socket.drop()
  const second = await reconnected
  const waiting = [client.send('alice', 'm1'), client.send('alice', 'm2')]
  let later: Promise<string> | undefined
  client.on('state', (state) => {
    if (state === 'bound' && later === undefined) later = client.send('alice', 'm3')
  })
  second.open()
  const [bind] = await second.sentCount(1)
  second.push({ type: 'bind', code: 201, uid: 'bob', mid: '10', ref: bind!.ref })
  const sent = await second.sentCount(4)
  t.same(
    sent.slice(1).map((f) => f.msg),
    ['m1', 'm2', 'm3'],
  )
  for (const frame of sent.slice(1)) second.push({ type: 'send', code: 204, uid: 'bob', touid: 'alice', mid: String(20 + sent.indexOf(frame)), ts: 1, ref: frame.ref })
  t.same(await Promise.all([...waiting, later!]), ['21', '22', '23'])
  t.equal(second.sent.length, 4, 'm3 went out once')
  client.close()
})

t.test('reset: receipt marks start over with the store', async (t) => {
  const created = FakeSocket.next()
  const client = new DuetClient({ url: 'ws://test/ws', uid: 'bob', WebSocket: FakeSocket, reconnect: fast, features: ['receipts'] })
  const connected = client.connect()
  const socket = await created
  socket.open()
  const [bind] = await socket.sentCount(1)
  socket.push({ type: 'bind', code: 201, uid: 'bob', mid: '10', ref: bind!.ref, features: ['receipts'] })
  await connected
  const receipts: string[] = []
  client.on('receipt', (r) => receipts.push(`${r.status} ${r.mid}`))
  socket.push({ type: 'receipt', code: 205, msg: 'delivered', uid: 'alice', touid: 'bob', mid: '6' })
  const reconnected = FakeSocket.next()
  socket.drop()
  const second = await reconnected
  second.open()
  const [rebind] = await second.sentCount(1)
  second.push({ type: 'bind', code: 201, uid: 'bob', mid: '0', reset: true, ref: rebind!.ref, features: ['receipts'] })
  second.push({ type: 'receipt', code: 205, msg: 'delivered', uid: 'alice', touid: 'bob', mid: '3' })
  t.same(receipts, ['delivered 6', 'delivered 3'], 'a mark below the old one is news after a reset')
  client.close()
})

t.test('409 (replaced) and 406 (auth) are final: no reconnect', async (t) => {
  const { client, socket } = await boundClient()
  const errors: DuetError[] = []
  client.on('error', (e) => errors.push(e))
  const before = FakeSocket.instances.length
  socket.push({ type: 'bind', error: true, code: 409, msg: 'replaced', uid: 'bob' })
  t.equal(client.state, 'closed')
  t.same(errors.map((e) => e.code), [409])
  // The close event has run by the next macrotask; nothing after it could schedule a retry.
  await new Promise(setImmediate)
  t.equal(FakeSocket.instances.length, before, 'no new socket')

  const created = FakeSocket.next()
  const denied = new DuetClient({ url: 'ws://test/ws', uid: 'eve', WebSocket: FakeSocket, token: () => 'bad' })
  const connecting = denied.connect()
  const s = await created
  s.open()
  const [bind] = await s.sentCount(1)
  t.match(bind, { type: 'bind', uid: 'eve', token: 'bad' })
  s.push({ type: 'bind', error: true, code: 406, msg: 'authentication failed', ref: bind!.ref })
  await t.rejects(connecting, { code: 406 })
  t.equal(denied.state, 'closed')
})

t.test('a server that is down is retried until it answers', async (t) => {
  const first = FakeSocket.next()
  const client = new DuetClient({ url: 'ws://test/ws', uid: 'bob', WebSocket: FakeSocket, reconnect: fast })
  const connected = client.connect()
  ;(await first).drop()
  const second = FakeSocket.next()
  ;(await second).drop()
  const third = await FakeSocket.next()
  third.open()
  const [bind] = await third.sentCount(1)
  t.notOk('since' in bind!, 'no position yet: the server pushes what is undelivered')
  third.push({ type: 'bind', code: 201, uid: 'bob', mid: '0', ref: bind!.ref })
  t.match(await connected, { mid: '0' })
  client.close()
})
