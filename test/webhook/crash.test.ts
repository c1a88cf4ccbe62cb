// The offline webhook survives SIGKILL of the server between the store and the delivery: the
// event was written in the message's transaction, so after a restart on the same store it
// arrives, once or more, always with the same Duet-Event-Id and the same body. A real server
// process (dist/server.js) and a real receiver (node:http); SQLite and PostgreSQL stores.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { eventually, within } from '../helpers/eventually.js'
import { dropSchema, freshSchema, PG_URL } from '../helpers/postgres.js'
import { startServer, type ServerProcess } from '../helpers/server-process.js'
import { TestClient } from '../helpers/ws-client.js'
import { adminSend, freshSecret, webhooks } from './admin.js'
import { idsByMid, Receiver, type Arrival } from './process-receiver.js'

t.setTimeout(120_000)

async function sqliteUrl(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'duet-webhook-crash-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return `sqlite:${join(dir, 'duet.db')}`
}

async function postgresUrl(t: Test): Promise<string> {
  const schema = freshSchema()
  t.teardown(() => dropSchema(schema))
  return `${PG_URL}?schema=${schema}`
}

function webhookEnv(receiver: Receiver, storeUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return { STORE_URL: storeUrl, WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: receiver.secret, RATE_LIMIT: '0', ...extra }
}

async function kill(t: Test, server: ServerProcess): Promise<void> {
  server.child.kill('SIGKILL')
  t.match(await server.exited, { signal: 'SIGKILL' }, 'the server was SIGKILLed')
}

/** A clean stop, so the store is left before the test's teardown drops it. */
async function stop(server: ServerProcess): Promise<void> {
  server.child.kill('SIGTERM')
  await server.exited
}

/** Every arrival of `mid` carries the id and the very body of `first`, each validly signed. */
function sameEventEveryTime(t: Test, receiver: Receiver, mid: string, first: Arrival): void {
  const all = receiver.arrivals.filter((a) => a.event.message.mid === mid)
  t.same(new Set(all.map((a) => a.id)), new Set([first.id]), `mid ${mid}: one Duet-Event-Id on all ${all.length} arrivals`)
  t.ok(
    all.every((a) => a.body === first.body),
    `mid ${mid}: the same body on every arrival`,
  )
  t.ok(
    all.every((a) => receiver.signed(a)),
    `mid ${mid}: every arrival is signed with WEBHOOK_SECRET`,
  )
}

/**
 * (a)/(c): the receiver holds the first try unanswered, so the event is claimed and in flight
 * when the server is SIGKILLed; restarted on the same store, with the receiver answering 200,
 * the event comes again: same id, same body. `leaseWaitMs`: how long the redelivery may take.
 */
async function killedWhileInFlight(t: Test, storeUrl: string, extra: Record<string, string>, leaseWaitMs: number): Promise<void> {
  const receiver = await Receiver.start(freshSecret(), { kind: 'hold' })
  t.teardown(() => receiver.close())
  const env = webhookEnv(receiver, storeUrl, extra)

  const first = await startServer(t, env)
  const mid = await adminSend(first.url, 'alice', 'bob', 'while bob is away')
  const held = await within(
    receiver.arrival((a) => a.event.message.mid === mid),
    10_000,
    'the first try',
  )
  t.match(
    held.event,
    { id: held.id, type: 'message.offline', message: { mid, from: 'alice', to: 'bob', msg: 'while bob is away' } },
    'the first try, held unanswered: the event is in flight',
  )
  t.ok(receiver.signed(held), 'signed')
  await kill(t, first)
  const triedBeforeKill = receiver.arrivals.length

  receiver.behaviour = { kind: 'answer', status: 200 }
  const second = await startServer(t, env)
  const again = await within(
    receiver.arrival((a) => a !== held && a.event.message.mid === mid),
    leaseWaitMs,
    'the event after the restart',
  )
  t.equal(again.id, held.id, 'the same Duet-Event-Id after the restart')
  t.equal(again.body, held.body, 'the same body, byte for byte')
  t.comment(`tries before the kill: ${triedBeforeKill}; redelivered ${again.at - held.at} ms after the held try`)
  await eventually(async () => (await webhooks(second.url)).pending === 0, 'no event pending', 10_000)
  t.same(await webhooks(second.url), { pending: 0, failed: [], nextBefore: null }, 'settled as sent')
  sameEventEveryTime(t, receiver, mid, held)
  await stop(second)
}

t.test('SQLite: SIGKILL while the try is in flight; after the restart the event comes again, same id', async (t) => {
  // A long timeout: the held try is cut by the kill, never by the server's own timer.
  await killedWhileInFlight(t, await sqliteUrl(t), { WEBHOOK_TIMEOUT_MS: '60000' }, 15_000)
})

t.test('SQLite: SIGKILL before any try reached the receiver (connection refused); after the restart every event comes', async (t) => {
  const receiver = await Receiver.closed(freshSecret())
  t.teardown(() => receiver.close())
  const env = webhookEnv(receiver, await sqliteUrl(t), { WEBHOOK_MAX_ATTEMPTS: '100' })

  const first = await startServer(t, env)
  const alice = await TestClient.bound(first.wsUrl, 'alice')
  const acks = await Promise.all(Array.from({ length: 10 }, (_, i) => alice.request({ type: 'send', touid: 'bob', msg: `m${i}` })))
  t.ok(
    acks.every((ack) => ack.code === 204),
    'all ten acked',
  )
  // An admin send too: both paths write the event in the message's transaction.
  const mids = [...acks.map((ack) => ack.mid!), await adminSend(first.url, 'system', 'bob', 'from the admin')]
  await kill(t, first)
  t.equal(receiver.arrivals.length, 0, 'nothing reached the receiver before the kill')

  await receiver.open()
  const second = await startServer(t, env)
  await within(
    receiver.waitFor(() => mids.every((mid) => receiver.arrivals.some((a) => a.event.message.mid === mid))),
    30_000,
    'every event after the restart',
  )
  await eventually(async () => (await webhooks(second.url)).pending === 0, 'no event pending', 10_000)
  t.same(await webhooks(second.url), { pending: 0, failed: [], nextBefore: null }, 'all settled as sent')
  const byMid = idsByMid(receiver.arrivals)
  t.same([...byMid.keys()].sort(), [...mids].sort(), 'one event for each message, none for anything else')
  for (const mid of mids) sameEventEveryTime(t, receiver, mid, receiver.arrivals.find((a) => a.event.message.mid === mid)!)
  const texts = receiver.arrivals.filter((a) => a.event.message.from === 'alice').map((a) => a.event.message.msg)
  t.same(new Set(texts), new Set(acks.map((_, i) => `m${i}`)), 'the texts sent')
  await stop(second)
})

t.test('PostgreSQL: SIGKILL while the try is in flight; once its lease runs out the event comes again, same id', async (t) => {
  // The lease is WEBHOOK_TIMEOUT_MS + 10 s; nothing releases it at start (nodes share the schema).
  await killedWhileInFlight(t, await postgresUrl(t), { WEBHOOK_TIMEOUT_MS: '500' }, 25_000)
})
