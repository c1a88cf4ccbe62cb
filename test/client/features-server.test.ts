// The opt-in features through the typed client against the real server in-process: receipts,
// typing, presence and carbons end to end.
import t from 'tap'
import WebSocket from 'ws'
import { DuetClient, type DuetClientOptions, type Feature } from '../../src/client/index.js'
import { startApp } from '../helpers/app.js'

const ALL: Feature[] = ['receipts', 'typing', 'presence', 'carbons']

interface Teardown {
  teardown(fn: () => unknown): void
}

function client(t: Teardown, wsUrl: string, uid: string, extra: Partial<DuetClientOptions> = {}): DuetClient {
  const c = new DuetClient({ url: wsUrl, uid, WebSocket, reconnect: { initialDelayMs: 5, maxDelayMs: 50 }, features: ALL, ...extra })
  t.teardown(() => c.close())
  return c
}

t.test('receipts, typing and presence between two users', async (t) => {
  const { wsUrl } = await startApp(t)
  const alice = client(t, wsUrl, 'alice')
  const info = await alice.connect()
  t.same(info.features, ALL, 'every feature accepted')

  // Presence: bob is offline, comes online, goes away.
  const first = alice.once('presence')
  alice.watch('bob')
  t.same(await first, { peer: 'bob', online: false })
  const bob = client(t, wsUrl, 'bob')
  const online = alice.once('presence')
  await bob.connect()
  t.same(await online, { peer: 'bob', online: true })

  // Delivered once bob's connection has it, read once he opens the conversation.
  const delivered = alice.once('receipt')
  const mid = await alice.send('bob', 'hello')
  t.same(await delivered, { peer: 'bob', status: 'delivered', mid })
  const read = alice.once('receipt')
  await bob.join('alice')
  t.same(await read, { peer: 'bob', status: 'read', mid })

  // Typing: a notice shows, and alice's message ends it.
  const typing = bob.once('typing')
  t.equal(alice.sendTyping('bob'), true)
  t.same(await typing, { peer: 'alice', typing: true })
  const stopped = bob.once('typing')
  await alice.send('bob', 'there')
  t.same(await stopped, { peer: 'alice', typing: false })

  const offline = alice.once('presence')
  bob.close()
  t.same(await offline, { peer: 'bob', online: false })
})

t.test('carbons: a second connection of the same uid sees what the first sent, flagged own', async (t) => {
  const { wsUrl } = await startApp(t, { multiDevice: true })
  const phone = client(t, wsUrl, 'alice')
  const laptop = client(t, wsUrl, 'alice')
  const info = await phone.connect()
  t.ok(info.features.length > 0, 'the server accepted the features')
  await laptop.connect()
  const carbon = laptop.once('message')
  const mid = await phone.send('bob', 'sent from the phone')
  t.match(await carbon, { mid, from: 'alice', to: 'bob', text: 'sent from the phone', own: true })
})

t.test('an empty message is refused, naming the field', async (t) => {
  const { wsUrl } = await startApp(t)
  const alice = client(t, wsUrl, 'alice')
  const info = await alice.connect()
  t.ok(info.features.length > 0, 'the server accepted the features')
  await t.rejects(alice.send('bob', ''), { code: 400, message: /^msg/ })
})
