// A node whose lease lapsed (stalled past PRESENCE_LEASE_MS, so another node's heartbeat
// collected its sessions) writes its own sessions back: the ones still connected, all of them,
// and nothing else. Two nodes in this process; the lapse is made by expiring the node's lease
// in Redis, and the heartbeats and the reconcile run by hand, so no step waits on a timer.
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { startApp } from '../helpers/app.js'
import { eventually } from '../helpers/eventually.js'
import { TestClient } from '../helpers/ws-client.js'
import { REDIS_URL } from './redis-helpers.js'
import { twoNodesOnRedis } from './two-nodes.js'

type Node = Awaited<ReturnType<typeof startApp>>

// A lease of ten minutes: the nodes' own heartbeat and reconcile timers (a third of it) stay out of the way.
const start = twoNodesOnRedis({ presenceLeaseMs: 600_000 })

const online = async (node: Node): Promise<string[]> => ((await (await fetch(`${node.url}/admin/online`)).json()) as { uids: string[] }).uids

/** Node `lapsed`'s lease runs out and `other`'s heartbeat collects its sessions (`lapsed` has not noticed yet). */
async function lapse(t: Test, lapsed: Node, other: Node): Promise<void> {
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.disconnect())
  await redis.zadd(`${lapsed.app.config.redisPrefix}presence:leases`, 0, lapsed.app.config.nodeId)
  await other.app.cluster.presence.heartbeat()
}

/** a's reconcile leaves alice connected, with no 409, and writes her back where b sees her. */
async function reconcileKeeps(t: Test, a: Node, b: Node, alice: TestClient): Promise<void> {
  await a.app.hub.registry.reconcile()
  t.equal((await alice.request({ type: 'exit' })).code, 203, 'still connected')
  t.same(
    alice.frames.filter((f) => f.code === 409),
    [],
    'no 409',
  )
  t.same(await online(b), ['alice'], 'written back')
  await alice.close()
}

t.test('a session replaced from another node is not written back after a lapse', async (t) => {
  const [a, b] = (await start(t)) as [Node, Node]
  const first = await TestClient.bound(a.wsUrl, 'frank')
  const replaced = first.nextCode(409)
  const second = await TestClient.bound(b.wsUrl, 'frank')
  await replaced
  t.equal((await first.closed).code, 4009)
  await second.close()
  await eventually(async () => !(await online(a)).includes('frank'), 'frank offline')

  await lapse(t, a, b)
  await a.app.cluster.presence.heartbeat() // finds its lease lapsed: writes its sessions back
  t.same(await online(b), [], 'no ghost online')
  t.same(((await (await fetch(`${b.url}/admin/sessions`)).json()) as { sessions: unknown[] }).sessions, [], 'no ghost session')
})

t.test('after a lapse, reconcile takes no live session for replaced', async (t) => {
  const [a, b] = (await start(t)) as [Node, Node]
  const alice = await TestClient.bound(a.wsUrl, 'alice')
  await lapse(t, a, b)
  t.same(await online(b), [], 'collected by b')
  await reconcileKeeps(t, a, b, alice)
})

t.test('sessions collected while the lease was renewed behind our back are written back, not taken for replaced', async (t) => {
  const [a, b] = (await start(t)) as [Node, Node]
  const alice = await TestClient.bound(a.wsUrl, 'alice')
  // Redis stalled past the lease: b's heartbeat dropped a's sessions, then a heartbeat of a's
  // that had timed out on a's side ran late and renewed a's lease, so a sees no lapse.
  await lapse(t, a, b)
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.disconnect())
  await redis.zadd(`${a.app.config.redisPrefix}presence:leases`, Date.now() + 600_000, a.app.config.nodeId)
  await reconcileKeeps(t, a, b, alice)
})
