// The opt-in frames of issue 17 against a scripted socket: the bind asks for features only
// when told to (byte for byte v1 otherwise), receipts, typing and presence come out as typed
// events, carbons as messages flagged own, watches go again after a reconnect, typing
// notices are throttled, and frames the client does not know are ignored.
import t from 'tap'
import {
  DuetClient,
  type ChatMessage,
  type DuetClientEvents,
  type DuetClientOptions,
  type DuetError,
  type Feature,
  type PresenceEvent,
  type Receipt,
  type TypingEvent,
} from '../../src/client/index.js'
import { FakeSocket } from './fake-socket.js'

const fast = { initialDelayMs: 1, maxDelayMs: 5 }
const ALL: Feature[] = ['receipts', 'typing', 'presence', 'carbons']

interface Bound {
  client: DuetClient
  socket: FakeSocket
  bindRaw: string
}

/** A client bound as bob, asking for every feature unless `options` says otherwise; the 201 accepts `accepted` (no `features` field when undefined). */
async function bound(options: Partial<DuetClientOptions> = {}, accepted: string[] | undefined = ALL): Promise<Bound> {
  const created = FakeSocket.next()
  const client = new DuetClient({ url: 'ws://test/ws', uid: 'bob', WebSocket: FakeSocket, reconnect: fast, features: ALL, ...options })
  const connected = client.connect()
  const socket = await created
  socket.open()
  const [bind] = await socket.sentCount(1)
  socket.push({ type: 'bind', code: 201, uid: 'bob', mid: '10', ref: bind!.ref, ...(accepted === undefined ? {} : { features: accepted }) })
  await connected
  return { client, socket, bindRaw: socket.raw[0]! }
}

/** Every value `event` emits from now on, in order. */
function collect<K extends keyof DuetClientEvents>(client: DuetClient, event: K): Array<DuetClientEvents[K]> {
  const got: Array<DuetClientEvents[K]> = []
  client.on(event, (value) => got.push(value))
  return got
}

t.test('without features the bind frame is byte for byte the one of protocol v1', async (t) => {
  const plain = await bound({ features: undefined }, undefined)
  const ref = JSON.parse(plain.bindRaw).ref as string
  t.equal(plain.bindRaw, `{"type":"bind","uid":"bob","ref":"${ref}"}`)
  t.same([...plain.client.features], [], 'nothing accepted')
  plain.client.close()

  const resumed = await bound({ since: '12', token: 'jwt', features: [] }, undefined)
  const ref2 = JSON.parse(resumed.bindRaw).ref as string
  t.equal(resumed.bindRaw, `{"type":"bind","uid":"bob","ref":"${ref2}","token":"jwt","since":"12"}`, 'an empty list asks for nothing')
  resumed.client.close()
})

t.test('features are asked for at bind, and the 201 says which are on', async (t) => {
  const asked = await bound({ features: ['presence', 'receipts', 'bogus' as Feature, 'presence'] }, ['receipts', 'presence', 'teleport'])
  t.same(JSON.parse(asked.bindRaw).features, ['receipts', 'presence'], 'known names, once each, in a fixed order, last in the frame')
  t.match(asked.bindRaw, /"features":\["receipts","presence"\]\}$/)
  t.same([...asked.client.features], ['receipts', 'presence'], 'unknown names in the answer are dropped')
  asked.client.close()

  // A server without the features: nothing in the 201, so the client sends none of their frames.
  const created = FakeSocket.next()
  const client = new DuetClient({ url: 'ws://test/ws', uid: 'bob', WebSocket: FakeSocket, features: ALL })
  const connected = client.connect()
  const socket = await created
  socket.open()
  const [bind] = await socket.sentCount(1)
  socket.push({ type: 'bind', code: 201, uid: 'bob', mid: '0', ref: bind!.ref })
  t.same(await connected, { uid: 'bob', mid: '0', reset: false, features: [] })
  t.equal(client.sendTyping('alice'), false, 'no typing notice to a server that did not accept it')
  client.watch('alice')
  client.join('alice').catch(() => undefined) // rejected by close()
  const [, next] = await socket.sentCount(2)
  t.match(next, { type: 'join' }, 'no watch frame went before the join')
  t.same([...client.watching], ['alice'], 'the watch is kept for a server that accepts it later')
  client.close()
})

t.test('receipts: typed, only increases, read implies delivered, malformed ones ignored', async (t) => {
  const { client, socket } = await bound()
  const receipts: Receipt[] = collect(client, 'receipt')
  const receipt = (msg: string, mid: unknown, uid = 'alice') => socket.push({ type: 'receipt', code: 205, msg, uid, touid: 'bob', mid })
  receipt('delivered', '12')
  receipt('delivered', '11') // behind: never goes down
  receipt('delivered', '12') // the same again
  receipt('read', '14')
  receipt('delivered', '13') // read 14 implies delivered 14
  receipt('delivered', '15')
  receipt('seen', '16') // not a status
  receipt('read', 'x') // not a mid
  receipt('read', '17', '') // no peer
  receipt('read', '3', 'carol')
  t.same(receipts, [
    { peer: 'alice', status: 'delivered', mid: '12' },
    { peer: 'alice', status: 'read', mid: '14' },
    { peer: 'alice', status: 'delivered', mid: '15' },
    { peer: 'carol', status: 'read', mid: '3' },
  ])
  client.close()
})

t.test('typing: incoming notices turn into a state that ends by itself or with a message', async (t) => {
  const { client, socket } = await bound({ typingTimeoutMs: 20 })
  const typing: TypingEvent[] = collect(client, 'typing')
  const notice = (uid: string) => socket.push({ type: 'typing', code: 206, uid, touid: 'bob' })
  notice('alice')
  notice('alice') // still typing: no second event
  t.same(typing, [{ peer: 'alice', typing: true }])
  socket.push({ type: 'send', code: 200, uid: 'alice', touid: 'bob', msg: 'hi', mid: '11', ts: 1 })
  t.same(typing[1], { peer: 'alice', typing: false }, 'their message ends it')

  notice('carol')
  t.same(await client.once('typing'), { peer: 'carol', typing: false }, 'no notice for typingTimeoutMs ends it')

  notice('dave')
  const reconnected = FakeSocket.next()
  socket.drop()
  t.same(await client.once('typing'), { peer: 'dave', typing: false }, 'a lost connection ends it')
  await reconnected
  client.close()
})

t.test('typing: outgoing notices are throttled per peer, and a message resets the throttle', async (t) => {
  const { client, socket } = await bound({ typingIntervalMs: 60_000 })
  t.equal(client.sendTyping('alice'), true)
  t.equal(client.sendTyping('alice'), false, 'the second keystroke within the interval sends nothing')
  t.equal(client.sendTyping('carol'), true, 'another peer has its own throttle')
  client.send('alice', 'done').catch(() => undefined) // rejected by close()
  t.equal(client.sendTyping('alice'), true, 'after a message the next keystroke notifies at once')
  const frames = await socket.sentCount(5)
  t.same(socket.raw.slice(1).filter((raw) => raw.includes('"typing"')), [
    '{"type":"typing","touid":"alice"}',
    '{"type":"typing","touid":"carol"}',
    '{"type":"typing","touid":"alice"}',
  ])
  t.match(frames[3], { type: 'send', touid: 'alice' })
  // A refused notice (rate limit, say) is not an error worth an event.
  const errors: DuetError[] = collect(client, 'error')
  socket.push({ type: 'typing', error: true, code: 429, msg: 'rate limit exceeded', uid: 'bob' })
  t.same(errors, [])
  client.close()
})

t.test('presence: watch, events for watched peers only, unwatch, re-watched after a reconnect', async (t) => {
  const { client, socket } = await bound()
  const presence: PresenceEvent[] = collect(client, 'presence')
  client.watch('alice')
  client.watch('alice') // once is enough
  client.watch('carol')
  client.unwatch('carol')
  client.watch('dave')
  await socket.sentCount(5)
  t.same(socket.raw.slice(1), [
    '{"type":"watch","touid":"alice"}',
    '{"type":"watch","touid":"carol"}',
    '{"type":"unwatch","touid":"carol"}',
    '{"type":"watch","touid":"dave"}',
  ])
  const state = (uid: string, msg: string) => socket.push({ type: 'presence', code: 207, msg, uid, touid: 'bob' })
  state('alice', 'online')
  state('carol', 'online') // crossed the unwatch
  socket.push({ type: 'unwatch', code: 208, msg: 'unwatched', uid: 'bob', touid: 'carol' })
  state('dave', 'away') // not a state
  state('alice', 'offline')
  t.same(presence, [
    { peer: 'alice', online: true },
    { peer: 'alice', online: false },
  ])

  const reconnected = FakeSocket.next()
  socket.drop()
  const second = await reconnected
  second.open()
  const [bind] = await second.sentCount(1)
  t.same(bind!.features, ALL)
  second.push({ type: 'bind', code: 201, uid: 'bob', mid: '10', ref: bind!.ref, features: ALL })
  await second.sentCount(3)
  t.same(second.raw.slice(1), ['{"type":"watch","touid":"alice"}', '{"type":"watch","touid":"dave"}'], 'every watched peer, again')
  client.close()
})

t.test('carbons: a message this uid sent elsewhere is flagged own and does not move the position', async (t) => {
  const { client, socket } = await bound()
  const got: ChatMessage[] = collect(client, 'message')
  socket.push({ type: 'send', code: 200, uid: 'bob', touid: 'alice', msg: 'from my phone', mid: '40', ts: 1 })
  socket.push({ type: 'send', code: 200, uid: 'alice', touid: 'bob', msg: 'reply', mid: '12', ts: 2 })
  socket.push({ type: 'send', code: 200, uid: 'bob', touid: 'alice', msg: 'from my phone', mid: '40', ts: 1 })
  t.same(got.map((m) => [m.mid, m.from, m.to, m.text, m.own]), [
    ['40', 'bob', 'alice', 'from my phone', true],
    ['12', 'alice', 'bob', 'reply', false],
  ], 'typed, once per mid')
  t.equal(client.lastMid, '12', 'the position counts only messages addressed to bob')
  client.close()
})

t.test('frames the client does not know are ignored, and it keeps working', async (t) => {
  const { client, socket } = await bound()
  const errors: DuetError[] = collect(client, 'error')
  const got: ChatMessage[] = collect(client, 'message')
  for (const raw of ['not json', '42', 'null', '[1,2]', '"text"', '{"type":"x"}', '{"code":"200"}']) socket.pushRaw(raw)
  socket.pushRaw(new Uint8Array([1, 2, 3]))
  socket.push({ type: 'reaction', code: 299, msg: '👍', uid: 'alice', touid: 'bob', mid: '11' })
  socket.push({ type: 'receipt', code: 205, msg: 'read', uid: 'alice', touid: 'bob' }) // no mid
  socket.push({ type: 'typing', code: 206, uid: 7 as unknown as string, touid: 'bob' })
  socket.push({ type: 'presence', code: 207, msg: 'online', uid: '', touid: 'bob' })
  socket.push({ type: 'send', code: 200, uid: 'alice', touid: 'bob', msg: 'still here', mid: '11', ts: 1 })
  t.same(errors, [])
  t.same(got.map((m) => m.text), ['still here'])
  t.equal(client.state, 'bound')
  client.close()
})

t.test('reconnectNow skips the backoff wait, and is a no-op when there is nothing to retry', async (t) => {
  const { client, socket } = await bound({ reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 } })
  t.equal(client.reconnectNow(), false, 'bound: nothing to do')
  const states = collect(client, 'state')
  socket.drop()
  await client.once('state')
  t.same(states, ['reconnecting'])
  const before = FakeSocket.instances.length
  const next = FakeSocket.next()
  t.equal(client.reconnectNow(), true)
  const second = await next
  t.equal(FakeSocket.instances.length, before + 1, 'a new socket at once, not in a minute')
  t.equal(client.reconnectNow(), false, 'an attempt is under way')
  second.open()
  const [bind] = await second.sentCount(1)
  const back = client.once('bound')
  second.push({ type: 'bind', code: 201, uid: 'bob', mid: '10', ref: bind!.ref, features: ALL })
  await back
  client.close()
  t.equal(client.reconnectNow(), false, 'closed: nothing to do')
})
