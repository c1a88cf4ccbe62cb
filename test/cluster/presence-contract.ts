// The Presence contract: the in-process and the Redis implementation run this same suite.
// Each subtest gets a fresh, empty cluster from `make`, and asks it for one instance per node.
import t from 'tap'
import type { Presence, PresenceEntry } from '../../src/cluster/presence.js'

export interface Teardown {
  teardown(fn: () => unknown): void
}

/** One test's own cluster: `node(id)` is the presence of node `id`, started. */
export interface PresenceCluster {
  node(nodeId: string): Promise<Presence>
}

export type MakePresenceCluster = (t: Teardown) => Promise<PresenceCluster>

export const entry = (id: string, uid: string, node: string, joined: string | null = null): PresenceEntry => ({
  id,
  uid,
  node,
  joined,
  connectedAt: new Date(Date.UTC(2024, 0, 1, 12, 0, id.length)).toISOString(),
  remoteAddress: '127.0.0.1',
})

export const byId = (list: PresenceEntry[]): PresenceEntry[] => [...list].sort((x, y) => x.id.localeCompare(y.id))

export function presenceContract(name: string, make: MakePresenceCluster): void {
  t.test(`${name}: Presence contract`, async (t) => {
    t.test('a session is visible from every node, with all its fields', async (t) => {
      const cluster = await make(t)
      const [a, b] = [await cluster.node('A'), await cluster.node('B')]
      const s1 = entry('s1', 'alice', 'A', 'bob')
      const s2 = entry('s2', 'bob', 'B')
      t.same(await a.add(s1, true), [])
      t.same(await b.add(s2, true), [])
      for (const p of [a, b]) {
        t.same(await p.sessionsOf('alice'), [s1])
        t.same(await p.sessionsOf('bob'), [s2])
        t.same(await p.sessionsOf('nobody'), [])
        t.same(byId(await p.sessions()), [s1, s2])
      }
    })

    t.test('exclusive add displaces the uid\'s older sessions, on any node, and returns them', async (t) => {
      const cluster = await make(t)
      const [a, b] = [await cluster.node('A'), await cluster.node('B')]
      const old = entry('old', 'alice', 'A', 'bob')
      const other = entry('other', 'bob', 'A')
      await a.add(old, true)
      await a.add(other, true)
      const newer = entry('new', 'alice', 'B')
      t.same(await b.add(newer, true), [old], 'the displaced session comes back, with its node')
      for (const p of [a, b]) {
        t.same(await p.sessionsOf('alice'), [newer])
        t.same(byId(await p.sessions()), [newer, other], 'other uids are untouched')
      }
      const newest = entry('newest', 'alice', 'B')
      t.same(await b.add(newest, true), [newer], 'on the same node too')
      t.same(await a.sessionsOf('alice'), [newest])
    })

    t.test('exclusive add of a session already recorded displaces nothing', async (t) => {
      const a = await (await make(t)).node('A')
      const s = entry('s', 'alice', 'A')
      await a.add(s, true)
      t.same(await a.add(s, true), [])
      t.same(await a.sessionsOf('alice'), [s])
    })

    t.test('non-exclusive add keeps every device', async (t) => {
      const cluster = await make(t)
      const [a, b] = [await cluster.node('A'), await cluster.node('B')]
      const phone = entry('phone', 'alice', 'A')
      const laptop = entry('laptop', 'alice', 'B')
      t.same(await a.add(phone, false), [])
      t.same(await b.add(laptop, false), [])
      for (const p of [a, b]) t.same(byId(await p.sessionsOf('alice')), [laptop, phone])
    })

    t.test('remove forgets a session, whichever node asks', async (t) => {
      const cluster = await make(t)
      const [a, b] = [await cluster.node('A'), await cluster.node('B')]
      const s1 = entry('s1', 'alice', 'A')
      const s2 = entry('s2', 'alice', 'A')
      await a.add(s1, false)
      await a.add(s2, false)
      await a.remove(s1)
      t.same(await b.sessionsOf('alice'), [s2])
      await b.remove(s2) // an admin kick from another node
      t.same(await a.sessionsOf('alice'), [])
      t.same(await a.sessions(), [])
      await a.remove(entry('ghost', 'nobody', 'A'))
      t.pass('removing an unknown session is a no-op')
    })

    t.test('setJoined is visible from another node and never recreates a session', async (t) => {
      const cluster = await make(t)
      const [a, b] = [await cluster.node('A'), await cluster.node('B')]
      const s = entry('s', 'alice', 'A')
      await a.add(s, true)
      await a.setJoined({ ...s, joined: 'bob' })
      t.same(await b.sessionsOf('alice'), [{ ...s, joined: 'bob' }])
      t.same(await b.sessions(), [{ ...s, joined: 'bob' }])
      await a.setJoined({ ...s, joined: null })
      t.same(await b.sessionsOf('alice'), [s])
      await a.remove(s)
      await a.setJoined({ ...s, joined: 'carol' })
      t.same(await b.sessionsOf('alice'), [], 'a removed session stays removed')
    })

    t.test('peekSessionsOf, where an engine offers it, answers as sessionsOf does', async (t) => {
      const cluster = await make(t)
      const [a, b] = [await cluster.node('A'), await cluster.node('B')]
      if (a.peekSessionsOf === undefined) return t.pass('not offered')
      const s1 = entry('s1', 'alice', 'A')
      const s2 = entry('s2', 'alice', 'B')
      const check = async (what: string): Promise<void> => {
        for (const p of [a, b]) t.same(byId([...p.peekSessionsOf!('alice')]), byId(await p.sessionsOf('alice')), what)
      }
      await check('none yet')
      await a.add(s1, false)
      await b.add(s2, false)
      await check('after add')
      await a.setJoined({ ...s1, joined: 'bob' })
      await check('after setJoined')
      await b.remove(s2)
      await check('after remove')
      t.same(b.peekSessionsOf!('nobody'), [])
    })

    t.test('missing names the sessions replaced or removed', async (t) => {
      const cluster = await make(t)
      const [a, b] = [await cluster.node('A'), await cluster.node('B')]
      const kept = entry('kept', 'alice', 'A')
      const replaced = entry('replaced', 'bob', 'A')
      const removed = entry('removed', 'carol', 'A')
      for (const s of [kept, replaced, removed]) await a.add(s, true)
      await b.add(entry('bob-on-b', 'bob', 'B'), true)
      await a.remove(removed)
      t.same((await a.missing([kept, replaced, removed])).sort(), ['removed', 'replaced'])
      t.same(await a.missing([]), [])
    })

    t.test('a node adds only its own sessions', async (t) => {
      const a = await (await make(t)).node('A')
      await t.rejects(a.add(entry('s', 'alice', 'B'), true))
      t.same(await a.sessions(), [])
    })

    t.test('heartbeat and ping resolve; sessions stay', async (t) => {
      const a = await (await make(t)).node('A')
      const s = entry('s', 'alice', 'A')
      await a.add(s, true)
      await a.heartbeat()
      await a.heartbeat()
      await a.ping()
      t.same(await a.sessionsOf('alice'), [s])
    })

    t.test('closing a node takes its sessions away at once', async (t) => {
      const cluster = await make(t)
      const [a, b] = [await cluster.node('A'), await cluster.node('B')]
      await a.add(entry('sa', 'alice', 'A'), true)
      const sb = entry('sb', 'bob', 'B')
      await b.add(sb, true)
      await a.close()
      t.same(await b.sessionsOf('alice'), [])
      t.same(await b.sessions(), [sb])
    })
  })
}
