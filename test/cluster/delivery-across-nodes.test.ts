// Two nodes in this process, on the machine's Redis (a key prefix of their own) and
// PostgreSQL (a schema of their own): a recipient on the other node who leaves while a
// message to them is being stored still gets it at the next bind; a sender's messages keep
// their order when presence lookups (before the write, or before the push) answer out of order.
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { dropSchema, freshSchema, PG_URL } from '../helpers/postgres.js'
import { TestClient } from '../helpers/ws-client.js'
import { deleteKeys, freshPrefix, REDIS_URL } from './redis-helpers.js'

const prefix = freshPrefix()
const schema = freshSchema()
t.teardown(async () => {
  await deleteKeys(prefix)
  await dropSchema(schema)
})

t.test('a recipient who leaves the other node during the write gets the message at the next bind', async (t) => {
  const node = (nodeId: string) =>
    startApp(t, { storeUrl: `${PG_URL}?schema=${schema}`, redisUrl: REDIS_URL, redisPrefix: prefix, nodeId })
  const a = await node('a')
  const b = await node('b')
  const alice = await TestClient.bound(a.wsUrl, 'alice')
  const bob = await TestClient.bound(b.wsUrl, 'bob')

  // Hold a's appends: a has looked bob up (on b) and stored the message as pushed.
  const append = a.app.store.append.bind(a.app.store)
  let release!: () => void
  let enter!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const entered = new Promise<void>((resolve) => (enter = resolve))
  a.app.store.append = async (message) => {
    enter()
    await gate
    return append(message)
  }
  // And tell when b has marked it undelivered again, before bob binds anew.
  const setDelivered = b.app.store.setDelivered.bind(b.app.store)
  let settled!: (delivered: boolean) => void
  const markedByB = new Promise<boolean>((resolve) => (settled = resolve))
  b.app.store.setDelivered = async (uid, mid, delivered) => {
    await setDelivered(uid, mid, delivered)
    settled(delivered)
  }
  const ack = alice.request({ type: 'send', touid: 'bob', msg: 'while leaving b' })
  await entered
  // b forgets bob before it answers: the push a asks b for finds no one there.
  const sessions = (await (await fetch(`${b.url}/admin/sessions`)).json()) as { sessions: Array<{ id: string; uid: string }> }
  const id = sessions.sessions.find((s) => s.uid === 'bob')!.id
  t.equal((await fetch(`${b.url}/admin/sessions/${id}`, { method: 'DELETE' })).status, 204)
  t.equal((await bob.closed).code, 4001)
  release()
  const { mid } = await ack
  t.equal(await markedByB, false, 'b found no connection and marked the message undelivered')

  const back = await TestClient.bound(a.wsUrl, 'bob')
  t.match(await back.request({ type: 'exit' }), { code: 203 })
  t.match(back.frames, [{ code: 200, msg: 'while leaving b', mid, offline: true }], 'pushed at the bind, not lost')
  await Promise.all([back.close(), alice.close()])
})

t.test("a sender's messages are stored in the order sent when presence answers out of order", async (t) => {
  const node = (nodeId: string) =>
    startApp(t, { storeUrl: `${PG_URL}?schema=${schema}`, redisUrl: REDIS_URL, redisPrefix: prefix, nodeId })
  const a = await node('a')
  const b = await node('b')
  const carol = await TestClient.bound(a.wsUrl, 'carol')
  const dave = await TestClient.bound(b.wsUrl, 'dave')

  // a's first lookup of dave is slow (as when it must re-read the node leases first); the
  // second one answers at once.
  const presence = a.app.cluster.presence
  const sessionsOf = presence.sessionsOf.bind(presence)
  let release!: () => void
  let firstEntered!: () => void
  let secondAnswered!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const entered = new Promise<void>((resolve) => (firstEntered = resolve))
  const answered = new Promise<void>((resolve) => (secondAnswered = resolve))
  let calls = 0
  presence.sessionsOf = async (uid) => {
    const call = ++calls
    if (call === 1) {
      firstEntered()
      await gate
    }
    const entries = await sessionsOf(uid)
    if (call === 2) secondAnswered()
    return entries
  }
  const first = carol.request({ type: 'send', touid: 'dave', msg: 'first' })
  await entered
  const second = carol.request({ type: 'send', touid: 'dave', msg: 'second' })
  await answered
  await new Promise((resolve) => setImmediate(resolve)) // whatever the answer set off has run
  release()
  const [one, two] = await Promise.all([first, second])
  t.ok(BigInt(one.mid!) < BigInt(two.mid!), `mids follow the sending order (${one.mid} then ${two.mid})`)
  t.match(await dave.nextCode(200), { msg: 'first', mid: one.mid })
  t.match(await dave.nextCode(200), { msg: 'second', mid: two.mid })
  await Promise.all([carol.close(), dave.close()])
})

t.test("a sender's messages reach another node in order when the later one's lookup answers first", async (t) => {
  const node = (nodeId: string) =>
    startApp(t, { storeUrl: `${PG_URL}?schema=${schema}`, redisUrl: REDIS_URL, redisPrefix: prefix, nodeId })
  const a = await node('a')
  const b = await node('b')
  const erin = await TestClient.bound(a.wsUrl, 'erin')

  // erin's first message is written while frank is offline as far as a looked; frank binds on
  // b during the write, so a looks him up again before pushing, and that look is slow.
  const append = a.app.store.append.bind(a.app.store)
  let releaseWrite!: () => void
  let writing!: () => void
  const writeGate = new Promise<void>((resolve) => (releaseWrite = resolve))
  const written = new Promise<void>((resolve) => (writing = resolve))
  let appends = 0
  a.app.store.append = async (message) => {
    if (++appends === 1) {
      writing()
      await writeGate
    }
    return append(message)
  }
  const presence = a.app.cluster.presence
  const sessionsOf = presence.sessionsOf.bind(presence)
  let releaseLook!: () => void
  let looking!: () => void
  const lookGate = new Promise<void>((resolve) => (releaseLook = resolve))
  const lookEntered = new Promise<void>((resolve) => (looking = resolve))
  let looks = 0
  presence.sessionsOf = async (uid) => {
    if (++looks === 2) {
      looking()
      await lookGate
    }
    return sessionsOf(uid)
  }

  const first = erin.request({ type: 'send', touid: 'frank', msg: 'first' })
  await written
  const frank = await TestClient.bound(b.wsUrl, 'frank')
  t.match(await frank.request({ type: 'exit' }), { code: 203 }, 'bound, with nothing to replay')
  releaseWrite()
  const one = await first
  await lookEntered // a looks frank up again for the first message
  const two = await erin.request({ type: 'send', touid: 'frank', msg: 'second' })
  releaseLook()
  t.match(await frank.nextCode(200), { msg: 'first', mid: one.mid })
  t.match(await frank.nextCode(200), { msg: 'second', mid: two.mid })
  await Promise.all([erin.close(), frank.close()])
})
