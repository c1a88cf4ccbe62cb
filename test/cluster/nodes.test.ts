// Three real nodes (child processes) on a private Redis and the machine's PostgreSQL:
// cross-node delivery, replacement, cluster-wide admin, a node killed and Redis restarted
// mid-traffic. In each, every acked message reaches its recipient exactly once after dedupe.
import t from 'tap'
import { dropSchema, freshSchema, PG_URL } from '../helpers/postgres.js'
import { startServer, type ServerProcess } from '../helpers/server-process.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'
import { eventually } from '../helpers/eventually.js'
import { PrivateRedis } from './redis-helpers.js'

const TOKEN = 'cluster-admin-token'
const auth = { authorization: `Bearer ${TOKEN}` }

interface SessionRow {
  id: string
  uid: string
  node: string
}

async function adminSessions(node: ServerProcess): Promise<SessionRow[]> {
  const res = await fetch(`${node.url}/admin/sessions`, { headers: auth })
  return ((await res.json()) as { sessions: SessionRow[] }).sessions
}

/** Collects a recipient's 200 frames by mid, across reconnects, as a client deduping by mid would. */
class Inbox {
  readonly mids = new Set<string>()
  duplicates = 0
  highest = 0n

  take(frame: Frame): void {
    if (this.mids.has(frame.mid!)) this.duplicates++
    this.mids.add(frame.mid!)
    if (BigInt(frame.mid!) > this.highest) this.highest = BigInt(frame.mid!)
  }

  /** Reads 200 frames from `client` until every mid in `expected` is in, or the connection closes. */
  async drain(client: TestClient, expected: Set<string>): Promise<void> {
    while ([...expected].some((mid) => !this.mids.has(mid))) {
      let frame: Frame
      try {
        frame = await client.nextCode(200)
      } catch {
        return
      }
      this.take(frame)
    }
  }
}

t.test('three nodes', async (t) => {
  const redis = await PrivateRedis.start()
  const schema = freshSchema()
  const env = (node: string): Record<string, string> => ({
    REDIS_URL: redis.url,
    REDIS_PREFIX: 'duet_nodes_test:',
    STORE_URL: `${PG_URL}?schema=${schema}`,
    NODE_ID: node,
    PRESENCE_LEASE_MS: '1500',
    ADMIN_TOKEN: TOKEN,
    RATE_LIMIT: '0',
  })
  // Started together: migrations must be safe when several nodes run them at once.
  const [n1, n2, n3] = await Promise.all(['n1', 'n2', 'n3'].map((id) => startServer(t, env(id)))) as [
    ServerProcess,
    ServerProcess,
    ServerProcess,
  ]
  // Teardowns run in order: the nodes are gone (their own teardowns) before Redis and the
  // schema, so DROP SCHEMA never waits on a node's open transaction.
  t.teardown(() => redis.kill())
  t.teardown(() => dropSchema(schema))

  await t.test('cross-node messages keep their order', async (t) => {
    const alice = await TestClient.bound(n1.wsUrl, 'alice')
    const bob = await TestClient.bound(n2.wsUrl, 'bob')
    const acks = await Promise.all(Array.from({ length: 100 }, (_, i) => alice.request({ type: 'send', touid: 'bob', msg: `m${i}` })))
    for (let i = 0; i < 100; i++) {
      t.match(await bob.nextCode(200), { msg: `m${i}`, uid: 'alice', mid: acks[i]!.mid, offline: undefined })
    }
    await Promise.all([alice.close(), bob.close()])
  })

  await t.test('admin routes answer for the whole cluster from any node', async (t) => {
    const carol = await TestClient.bound(n1.wsUrl, 'carol')
    const dave = await TestClient.bound(n3.wsUrl, 'dave')
    for (const node of [n1, n2, n3]) {
      const online = (await (await fetch(`${node.url}/admin/online`, { headers: auth })).json()) as { uids: string[] }
      t.same(online.uids.sort(), ['carol', 'dave'])
      const sessions = await adminSessions(node)
      t.same(sessions.map((s) => `${s.uid}@${s.node}`).sort(), ['carol@n1', 'dave@n3'])
    }
    const daveSession = (await adminSessions(n1)).find((s) => s.uid === 'dave')!
    const kicked = await fetch(`${n2.url}/admin/sessions/${daveSession.id}`, { method: 'DELETE', headers: auth })
    t.equal(kicked.status, 204, 'a session on n3 disconnected from n2')
    t.equal((await dave.closed).code, 4001)
    await eventually(async () => (await adminSessions(n1)).every((s) => s.uid !== 'dave'), 'dave to leave presence')
    await carol.close()
  })

  await t.test('newest bind replaces across nodes', async (t) => {
    const erin = await TestClient.bound(n1.wsUrl, 'erin')
    const old = await TestClient.bound(n2.wsUrl, 'frank')
    const replaced = old.nextCode(409)
    const fresh = await TestClient.bound(n3.wsUrl, 'frank')
    t.match(await replaced, { type: 'bind', error: true, code: 409 })
    t.equal((await old.closed).code, 4009)
    await erin.request({ type: 'send', touid: 'frank', msg: 'to the new one' })
    t.match(await fresh.nextCode(200), { msg: 'to the new one' })
    const frankSessions = (await adminSessions(n1)).filter((s) => s.uid === 'frank')
    t.same(frankSessions.map((s) => s.node), ['n3'])
    await Promise.all([erin.close(), fresh.close()])
  })

  await t.test('join and exit on one node decide read or unread for a sender on another', async (t) => {
    const sender = await TestClient.bound(n1.wsUrl, 'liam')
    const reader = await TestClient.bound(n2.wsUrl, 'mona')
    const unread = async (): Promise<number> => {
      const res = await fetch(`${n3.url}/users/mona/conversations`, { headers: auth })
      const { conversations } = (await res.json()) as { conversations: Array<{ peer: string; unread: number }> }
      return conversations.find((c) => c.peer === 'liam')?.unread ?? 0
    }
    t.match(await reader.request({ type: 'join', touid: 'liam' }), { code: 202 })
    await sender.request({ type: 'send', touid: 'mona', msg: 'while joined' })
    t.match(await reader.nextCode(200), { msg: 'while joined' })
    t.equal(await unread(), 0, 'read on arrival: the join reached the other node')
    // Right after the 203, with no pause: the exit must already be in presence when the
    // next message is looked up.
    t.match(await reader.request({ type: 'exit' }), { code: 203, touid: 'liam' })
    await sender.request({ type: 'send', touid: 'mona', msg: 'after the exit' })
    t.match(await reader.nextCode(200), { msg: 'after the exit' })
    t.equal(await unread(), 1, 'unread: the exit reached the other node before its 203')
    await Promise.all([sender.close(), reader.close()])
  })

  await t.test('Redis restarted mid-traffic: acked messages all arrive, once', async (t) => {
    const sender = await TestClient.bound(n1.wsUrl, 'gina')
    let receiver = await TestClient.bound(n2.wsUrl, 'hank')
    const local = await TestClient.bound(n1.wsUrl, 'ivy')
    const acked = new Set<string>()
    const send = async (i: number): Promise<void> => {
      const ack = await sender.request({ type: 'send', touid: 'hank', msg: `r${i}` })
      t.equal(ack.code, 204, `r${i} acked`)
      acked.add(ack.mid!)
    }
    for (let i = 0; i < 20; i++) await send(i)
    await redis.kill()
    for (let i = 20; i < 40; i++) await send(i)
    const localAck = await sender.request({ type: 'send', touid: 'ivy', msg: 'local still works' })
    t.match(await local.nextCode(200), { msg: 'local still works', mid: localAck.mid })
    const ready = await fetch(`${n1.url}/readyz`)
    t.equal(ready.status, 503, '/readyz reports the outage')
    // The conversation list still answers, knowing only n1's sessions.
    const list = await fetch(`${n1.url}/users/gina/conversations`, { headers: auth })
    t.equal(list.status, 200, 'the conversation list answers during the outage')
    const { conversations } = (await list.json()) as { conversations: Array<{ peer: string; online: boolean }> }
    t.same(
      Object.fromEntries(conversations.map((c) => [c.peer, c.online])),
      { ivy: true, hank: false },
      'ivy is online on n1; hank, on n2, is shown offline',
    )
    await redis.restart()
    await eventually(async () => (await fetch(`${n1.url}/readyz`)).status === 200, 'n1 ready again', 15_000)
    await eventually(async () => (await fetch(`${n2.url}/readyz`)).status === 200, 'n2 ready again', 15_000)
    for (let i = 40; i < 60; i++) await send(i)

    // The receiver recovers as a client does: reconnect with since = the highest mid seen.
    const inbox = new Inbox()
    for (const frame of receiver.frames.splice(0)) if (frame.code === 200) inbox.take(frame)
    await receiver.close()
    receiver = await TestClient.connect(n2.wsUrl)
    receiver.send({ type: 'bind', uid: 'hank', since: inbox.highest.toString() })
    t.match(await receiver.next(), { code: 201 })
    await inbox.drain(receiver, acked)
    t.same([...acked].filter((mid) => !inbox.mids.has(mid)), [], 'no acked message missing')
    t.same([...inbox.mids].filter((mid) => !acked.has(mid)), [], 'nothing that was not sent')
    await Promise.all([sender.close(), receiver.close(), local.close()])
  })

  await t.test('a node killed mid-traffic: its users recover elsewhere, its presence expires', async (t) => {
    const sender = await TestClient.bound(n1.wsUrl, 'jack')
    const receiver = await TestClient.bound(n3.wsUrl, 'kate')
    const inbox = new Inbox()
    const acked = new Set<string>()
    for (let i = 0; i < 20; i++) acked.add((await sender.request({ type: 'send', touid: 'kate', msg: `k${i}` })).mid!)
    await inbox.drain(receiver, acked)
    n3.child.kill('SIGKILL')
    await receiver.closed
    for (let i = 20; i < 40; i++) acked.add((await sender.request({ type: 'send', touid: 'kate', msg: `k${i}` })).mid!)

    const started = Date.now()
    await eventually(async () => (await adminSessions(n1)).every((s) => s.node !== 'n3'), "n3's sessions to expire", 10_000)
    t.ok(Date.now() - started < 10_000, `n3 left presence within ${Date.now() - started} ms`)

    const back = await TestClient.connect(n2.wsUrl)
    back.send({ type: 'bind', uid: 'kate', since: inbox.highest.toString() })
    t.match(await back.next(), { code: 201 })
    await inbox.drain(back, acked)
    t.same([...acked].filter((mid) => !inbox.mids.has(mid)), [], 'every acked message reached kate')
    await Promise.all([sender.close(), back.close()])
  })
})
