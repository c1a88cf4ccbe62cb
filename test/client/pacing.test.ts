// The client's pace and its watch for a dead link: frames that waited for a re-bind go out
// under the server's rate limit instead of at once (which got 429s, then 1008), and a request
// the server stays silent about ends the connection, which is opened again.
import t from 'tap'
import WebSocket from 'ws'
import { Code, DuetClient, DuetError, type DuetClientOptions } from '../../src/client/index.js'
import { startApp } from '../helpers/app.js'
import { eventually, within } from '../helpers/eventually.js'
import { boundOnFake, FakeSocket } from './fake-socket.js'

const fast = { initialDelayMs: 1, maxDelayMs: 5 }

const boundClient = (options: Partial<DuetClientOptions>): ReturnType<typeof boundOnFake> => boundOnFake({ reconnect: fast, ...options })

t.test('frames that waited for the bind go out at the pace, in order', async (t) => {
  const created = FakeSocket.next()
  const client = new DuetClient({ url: 'ws://test/ws', uid: 'bob', WebSocket: FakeSocket, pacing: { perSecond: 50, burst: 4 } })
  t.teardown(() => client.close())
  const connected = client.connect()
  const sends = Array.from({ length: 12 }, (_, i) => client.send('alice', `m${i}`))
  sends.forEach((p) => p.catch(() => undefined))
  const socket = await created
  socket.open()
  const [bind] = await socket.sentCount(1)
  socket.push({ type: 'bind', code: 201, uid: 'bob', mid: '0', ref: bind!.ref })
  await connected
  t.equal(socket.sent.length, 4, 'the burst: the bind and three sends')
  const all = await within(socket.sentCount(13), 3000, 'the other nine sends')
  t.same(
    all.slice(1).map((f) => f.msg),
    sends.map((_, i) => `m${i}`),
    'every send, once, in order',
  )
})

t.test('a typing notice that cannot go at once is dropped, not queued', async (t) => {
  const { client, socket } = await boundOnFake({ features: ['typing'], pacing: { perSecond: 1, burst: 2 } }, { features: ['typing'] })
  t.teardown(() => client.close())
  t.equal(client.sendTyping('alice'), true, 'the bucket has one token left after the bind')
  t.equal(client.sendTyping('carol'), false, 'none left: dropped')
  t.same(
    socket.sent.map((f) => f.type),
    ['bind', 'typing'],
  )
})

t.test('a request the server is silent about ends the connection; the re-bind sends it again', async (t) => {
  const { client, socket } = await boundClient({ answerTimeoutMs: 50 })
  t.teardown(() => client.close())
  const reconnected = FakeSocket.next()
  const sending = client.send('alice', 'hello')
  const [, send] = await socket.sentCount(2)
  const second = await within(reconnected, 2000, 'a new connection after the silence')
  t.equal(socket.readyState, 3, 'the silent connection is closed')
  t.equal(client.state, 'reconnecting')
  second.open()
  const [bind] = await second.sentCount(1)
  second.push({ type: 'bind', code: 201, uid: 'bob', mid: '10', ref: bind!.ref })
  const [, resend] = await second.sentCount(2)
  t.same(resend, send, 'the same frame, with the same ref')
  second.push({ type: 'send', code: 204, uid: 'bob', touid: 'alice', mid: '11', ts: 1, ref: resend!.ref })
  t.equal(await sending, '11')
})

t.test('time spent idle before a request does not count as silence', async (t) => {
  const { client, socket } = await boundClient({ answerTimeoutMs: 50 })
  t.teardown(() => client.close())
  // Not a synchronisation: the rule under test is about time passing with nothing pending.
  await new Promise((resolve) => setTimeout(resolve, 120))
  FakeSocket.onCreate = () => t.fail('no reconnect: the request was answered in time')
  const sending = client.send('alice', 'after a pause')
  const [, send] = await socket.sentCount(2)
  socket.push({ type: 'send', code: 204, uid: 'bob', touid: 'alice', mid: '11', ts: 1, ref: send!.ref })
  t.equal(await sending, '11')
  t.equal(client.state, 'bound')
  FakeSocket.onCreate = null
})

t.test('against the server: sends queued offline go out within its rate limit', async (t) => {
  const { wsUrl } = await startApp(t, { rateLimit: 20, rateBurst: 10 })
  const offline = async (options: Partial<DuetClientOptions>): Promise<PromiseSettledResult<string>[]> => {
    const alice = new DuetClient({ url: wsUrl, uid: 'alice', WebSocket, reconnect: false, ...options })
    t.teardown(() => alice.close())
    const connected = alice.connect()
    // Queued: the bind has not been answered yet.
    const sends = Array.from({ length: 45 }, (_, i) => alice.send('bob', `m${i}`))
    await connected
    const settled = await within(Promise.allSettled(sends), 10_000, 'every send answered')
    alice.close()
    return settled
  }

  const paced = await offline({ pacing: { perSecond: 15, burst: 8 } })
  t.ok(
    paced.every((r) => r.status === 'fulfilled'),
    'paced: every send stored',
  )

  const unpaced = await offline({ pacing: false })
  const refused = unpaced.filter((r) => r.status === 'rejected').map((r) => (r.reason as DuetError).code)
  t.ok(refused.length > 0, 'without pacing the same burst is refused')
  t.ok(
    refused.every((code) => code === Code.RATE_LIMITED || code === 1008),
    'with 429, or the connection closed for abuse',
  )
})

t.test('a bind the server is silent about ends the connection too', async (t) => {
  const created = FakeSocket.next()
  const client = new DuetClient({ url: 'ws://test/ws', uid: 'bob', WebSocket: FakeSocket, reconnect: fast, answerTimeoutMs: 50 })
  t.teardown(() => client.close())
  const connected = client.connect()
  const sending = client.send('alice', 'queued')
  const first = await created
  const reconnected = FakeSocket.next()
  first.open()
  await first.sentCount(1)
  const second = await within(reconnected, 2000, 'a new connection after the unanswered bind')
  t.equal(first.readyState, 3, 'the silent connection is closed')
  second.open()
  const [bind] = await second.sentCount(1)
  second.push({ type: 'bind', code: 201, uid: 'bob', mid: '0', ref: bind!.ref })
  await connected
  const [, send] = await second.sentCount(2)
  second.push({ type: 'send', code: 204, uid: 'bob', touid: 'alice', mid: '1', ts: 1, ref: send!.ref })
  t.equal(await sending, '1')
})

t.test('a typing notice dropped by the pace does not hold back the next keystroke', async (t) => {
  const { client, socket } = await boundOnFake({ features: ['typing'], pacing: { perSecond: 20, burst: 1 } }, { features: ['typing'] })
  t.teardown(() => client.close())
  t.equal(client.sendTyping('alice'), false, 'the bind took the only token')
  // Keystrokes until the bucket has a token again (50 ms at 20/s), well inside typingIntervalMs (3 s).
  await eventually(() => client.sendTyping('alice'), 'a notice once a token is back', 1000)
  t.same(
    socket.sent.map((f) => f.type),
    ['bind', 'typing'],
  )
})

t.test('options out of range are refused', async (t) => {
  const base = { url: 'ws://test/ws', uid: 'bob', WebSocket: FakeSocket }
  for (const pacing of [{ perSecond: 0 }, { perSecond: Infinity }, { burst: 0.5 }, { burst: Number.NaN }]) {
    t.throws(() => new DuetClient({ ...base, pacing }), RangeError, `pacing ${JSON.stringify(pacing)}`)
  }
  for (const answerTimeoutMs of [0, -1, 1.5, Infinity, 2 ** 31]) {
    t.throws(() => new DuetClient({ ...base, answerTimeoutMs }), RangeError, `answerTimeoutMs ${answerTimeoutMs}`)
  }
})

t.test('against the server: a burst of 429s slows the pace once, not to a crawl', async (t) => {
  const { wsUrl } = await startApp(t, { rateLimit: 20, rateBurst: 10 })
  const alice = new DuetClient({ url: wsUrl, uid: 'alice', WebSocket, reconnect: false })
  t.teardown(() => alice.close())
  await alice.connect()
  const first = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => alice.send('bob', `a${i}`)))
  t.ok(
    first.some((r) => r.status === 'rejected' && (r.reason as DuetError).code === Code.RATE_LIMITED),
    'the default pace meets this server\'s limit',
  )
  // Ten more: at half the pace they take a fifth of a second; at one a second, ten.
  const second = await within(Promise.allSettled(Array.from({ length: 10 }, (_, i) => alice.send('bob', `b${i}`))), 3000, 'ten more sends answered')
  t.equal(second.length, 10)
})

t.test('against the server: an answer read late, after a long turn, is no dead link', async (t) => {
  const { wsUrl } = await startApp(t)
  const alice = new DuetClient({ url: wsUrl, uid: 'alice', WebSocket, reconnect: fast, answerTimeoutMs: 200 })
  t.teardown(() => alice.close())
  await alice.connect()
  const states: string[] = []
  alice.on('state', (s) => states.push(s))
  const sending = alice.send('bob', 'hi')
  // Holds the event loop past answerTimeoutMs while the 204 arrives: a busy page, a frozen tab.
  const until = performance.now() + 400
  while (performance.now() < until);
  t.ok(await sending)
  t.same(states, [], 'no reconnect')
})
