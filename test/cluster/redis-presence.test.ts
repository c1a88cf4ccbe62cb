// What only the Redis presence has to get right: leases that run out, and writing a
// node's sessions back after Redis lost them.
import { Redis } from 'ioredis'
import t from 'tap'
import type { Presence } from '../../src/cluster/presence.js'
import { FAIL_FAST } from '../../src/cluster/redis-connection.js'
import { RedisPresence } from '../../src/cluster/redis-presence.js'
import { eventually } from '../helpers/eventually.js'
import { entry, type Teardown } from './presence-contract.js'
import { deleteKeys, freePort, freshPrefix, keysUnder, REDIS_URL } from './redis-helpers.js'

interface NodeOptions {
  leaseMs?: number
  /** Our own connection, to cut it from the test. */
  redis?: Redis
}

function cluster(t: Teardown) {
  const prefix = freshPrefix()
  const closers: Array<() => Promise<unknown>> = []
  t.teardown(async () => {
    for (const close of closers) await close()
    await deleteKeys(prefix)
  })
  return {
    prefix,
    node: async (nodeId: string, options: NodeOptions = {}): Promise<RedisPresence> => {
      const { redis = REDIS_URL, leaseMs } = options
      const presence = new RedisPresence({ redis, nodeId, prefix, leaseMs })
      closers.push(() => presence.close())
      return presence.start()
    },
    connection: (): Redis => {
      const redis = new Redis(REDIS_URL, FAIL_FAST)
      closers.push(async () => redis.disconnect())
      return redis
    },
  }
}

const uids = async (p: Presence): Promise<string[]> => (await p.sessions()).map((e) => e.uid).sort()

t.test('a node that stops heartbeating vanishes: readers drop it at once, a heartbeat collects it', async (t) => {
  const c = cluster(t)
  const [a, b] = [await c.node('A', { leaseMs: 500 }), await c.node('B', { leaseMs: 500 })]
  const sa = entry('sa', 'alice', 'A')
  await a.add(sa, true)
  await b.add(entry('sb', 'bob', 'B'), true)
  t.equal((await a.sessionsOf('bob')).length, 1, 'present while its lease runs')
  const since = Date.now()
  // Nobody heartbeats: only the readers' lease check can hide B.
  await eventually(async () => (await a.sessionsOf('bob')).length === 0, 'bob to vanish')
  t.ok(Date.now() - since < 2000, 'within a bounded time')
  t.same(await a.sessions(), [], 'A lapsed too: it did not heartbeat either')
  t.ok((await keysUnder(c.prefix)).includes(`${c.prefix}presence:node:B`), 'not collected yet')

  await a.heartbeat()
  t.same(await a.sessionsOf('alice'), [sa], 'a heartbeat brings the lapsed node back with its sessions')
  t.same(await uids(a), ['alice'])
  const left = ['presence:leases', 'presence:node:A', 'presence:user:alice'].map((key) => c.prefix + key)
  t.same(await keysUnder(c.prefix), left, 'B collected')
})

t.test('a heartbeating node stays while a silent one goes', async (t) => {
  const c = cluster(t)
  const [a, b] = [await c.node('A', { leaseMs: 300 }), await c.node('B', { leaseMs: 300 })]
  await a.add(entry('sa', 'alice', 'A'), true)
  await b.add(entry('sb', 'bob', 'B'), true)
  await eventually(async () => {
    await a.heartbeat()
    return (await uids(a)).join() === 'alice'
  }, 'B to be collected')
  t.same(await uids(b), ['alice'], 'every reader agrees')
})

t.test('a node started after a reader loaded its lease cache is seen at once', async (t) => {
  const c = cluster(t)
  const a = await c.node('A')
  await a.heartbeat()
  const late = await c.node('Late')
  const s = entry('s', 'carol', 'Late')
  await late.add(s, true)
  t.same(await a.sessionsOf('carol'), [s])
})

t.test('after Redis lost every key, a heartbeat writes our sessions back', async (t) => {
  const c = cluster(t)
  const [a, b] = [await c.node('A'), await c.node('B')]
  const s1 = entry('s1', 'alice', 'A')
  const s2 = entry('s2', 'bob', 'A')
  const gone = entry('gone', 'dave', 'A')
  await a.add(s1, true)
  await a.add(s2, false)
  await a.add(gone, true)
  await a.setJoined({ ...s1, joined: 'bob' })
  await a.remove(gone)
  await deleteKeys(c.prefix)
  t.same(await b.sessions(), [], 'lost')
  await a.heartbeat()
  t.same(await b.sessionsOf('alice'), [{ ...s1, joined: 'bob' }])
  t.same(await b.sessionsOf('bob'), [s2])
  t.same(await uids(b), ['alice', 'bob'], 'a removed session stays removed')
})

t.test('after Redis lost every key, a reconnect writes our sessions back', async (t) => {
  const c = cluster(t)
  const connection = c.connection()
  const [a, b] = [await c.node('A', { redis: connection }), await c.node('B')]
  const s1 = entry('s1', 'alice', 'A')
  await a.add(s1, true)
  await deleteKeys(c.prefix)
  connection.disconnect(true)
  const back = await eventually(async () => {
    const list = await b.sessionsOf('alice')
    return list.length > 0 && list
  }, 'alice back')
  t.same(back, [s1])
})

t.test('a session whose uid bound elsewhere meanwhile is not written back, and shows as missing', async (t) => {
  const c = cluster(t)
  const [a, b] = [await c.node('A'), await c.node('B')]
  const old = entry('old', 'alice', 'A')
  await a.add(old, true)
  await deleteKeys(c.prefix)
  const newer = entry('new', 'alice', 'B')
  t.same(await b.add(newer, true), [], 'Redis no longer knew the old one')
  await a.reregister()
  t.same(await a.sessionsOf('alice'), [newer])
  t.same(await a.missing([old]), ['old'])
})

t.test('start drops what a crashed run of the same node id left behind', async (t) => {
  const c = cluster(t)
  const connection = c.connection()
  const crashed = await c.node('A', { redis: connection })
  await crashed.add(entry('s1', 'alice', 'A'), true)
  connection.disconnect() // no deregistration: the process died
  const b = await c.node('B')
  t.equal((await b.sessionsOf('alice')).length, 1, 'its lease has not run out yet')
  await c.node('A')
  t.same(await b.sessionsOf('alice'), [])
  t.same(await uids(b), [])
})

t.test('start rejects, in bounded time, when Redis cannot be reached', async (t) => {
  const nowhere = `redis://127.0.0.1:${await freePort()}`
  const presence = new RedisPresence({ redis: nowhere, nodeId: 'A', prefix: freshPrefix() })
  t.teardown(() => presence.close())
  await t.rejects(presence.start(300), /not ready/)
})
