// The Broker contract: the in-process and the Redis pub/sub implementation run this same suite.
// Each subtest gets a fresh cluster from `make`; `broker()` is one more node's broker in it.
import t from 'tap'
import type { Broker, ClusterEvent } from '../../src/cluster/broker.js'
import { within } from '../helpers/eventually.js'
import type { Teardown } from './presence-contract.js'

export interface BrokerCluster {
  broker(): Promise<Broker>
}

export type MakeBrokerCluster = (t: Teardown) => Promise<BrokerCluster>

const deliver = (n: number, to = 'bob'): ClusterEvent => ({
  kind: 'deliver',
  to,
  message: {
    mid: String(n + 1),
    from: 'alice',
    to,
    msg: `m${n} ünïcode ✓ "quoted" \\ /`,
    ts: 1_700_000_000_000 + n,
    read: n % 2 === 0,
  },
})

/** What one node received, and a way to wait for the n-th event. */
class Inbox {
  readonly events: ClusterEvent[] = []
  private waiters: Array<{ n: number; resolve: () => void }> = []

  readonly handler = (event: ClusterEvent): void => {
    this.events.push(event)
    this.waiters = this.waiters.filter((w) => (this.events.length >= w.n ? (w.resolve(), false) : true))
  }

  received(n: number, ms = 5000): Promise<void> {
    const reached = new Promise<void>((resolve) => {
      if (this.events.length >= n) resolve()
      else this.waiters.push({ n, resolve })
    })
    return within(reached, ms, `event #${n}`)
  }
}

/** Brokers of nodes A, B and C, each subscribed with an inbox of its own. */
async function threeNodes(make: MakeBrokerCluster, t: Parameters<MakeBrokerCluster>[0]) {
  const cluster = await make(t)
  const [a, b, c] = [await cluster.broker(), await cluster.broker(), await cluster.broker()]
  const inbox = { a: new Inbox(), b: new Inbox(), c: new Inbox() }
  await a.subscribe('A', inbox.a.handler)
  await b.subscribe('B', inbox.b.handler)
  await c.subscribe('C', inbox.c.handler)
  return { a, b, c, inbox }
}

export function brokerContract(name: string, make: MakeBrokerCluster): void {
  t.test(`${name}: Broker contract`, async (t) => {
    t.test('delivers to the named node only, every event, in order', async (t) => {
      const { a, c, inbox } = await threeNodes(make, t)
      const sent = Array.from({ length: 1000 }, (_, i) => deliver(i))
      await Promise.all(sent.map((e) => c.publish('B', e)))
      await inbox.b.received(1000)
      t.same(inbox.b.events, sent)
      // Markers published after the burst: anything misrouted to A or C would arrive before them.
      const marker: ClusterEvent = { kind: 'close', sessionId: 'marker', reason: 'kicked' }
      await c.publish('A', marker)
      await a.publish('C', marker)
      await inbox.a.received(1)
      await inbox.c.received(1)
      t.same(inbox.a.events, [marker])
      t.same(inbox.c.events, [marker])
    })

    t.test('a node may send to itself; both event kinds arrive intact', async (t) => {
      const a = await (await make(t)).broker()
      const inbox = new Inbox()
      await a.subscribe('A', inbox.handler)
      const events: ClusterEvent[] = [
        deliver(7, 'zoë'),
        { kind: 'close', sessionId: 's-1', reason: 'replaced' },
        { kind: 'close', sessionId: 's-2', reason: 'kicked' },
      ]
      for (const e of events) await a.publish('A', e)
      await inbox.received(3)
      t.same(inbox.events, events)
    })

    t.test('delivery is asynchronous: never inside publish()', async (t) => {
      const a = await (await make(t)).broker()
      const inbox = new Inbox()
      await a.subscribe('A', inbox.handler)
      const published = a.publish('A', deliver(0))
      t.equal(inbox.events.length, 0)
      await published
      await inbox.received(1)
    })

    t.test('publishing to a node nobody listens on is a no-op', async (t) => {
      const a = await (await make(t)).broker()
      await a.publish('nowhere', deliver(0))
      t.pass()
    })

    t.test('a closed broker receives nothing more', async (t) => {
      const cluster = await make(t)
      const [a, b] = [await cluster.broker(), await cluster.broker()]
      const inbox = { a: new Inbox(), b: new Inbox() }
      await a.subscribe('A', inbox.a.handler)
      await b.subscribe('B', inbox.b.handler)
      await a.publish('B', deliver(0))
      await inbox.b.received(1)
      await b.close()
      await a.publish('B', deliver(1))
      await a.publish('A', deliver(2)) // a marker for A: by the time it lands, B had its chance
      await inbox.a.received(1)
      t.equal(inbox.b.events.length, 1)
    })

    t.test('a throwing handler does not stop delivery', async (t) => {
      const a = await (await make(t)).broker()
      const inbox = new Inbox()
      await a.subscribe('A', (e) => {
        if (e.kind === 'close') throw new Error('handler bug')
        inbox.handler(e)
      })
      await a.publish('A', { kind: 'close', sessionId: 'x', reason: 'kicked' })
      await a.publish('A', deliver(1))
      await inbox.received(1)
      t.same(inbox.events, [deliver(1)])
    })

    t.test('a broadcast reaches every subscribed node once, the sender too; the signal kinds arrive intact', async (t) => {
      const { a, inbox } = await threeNodes(make, t)
      const change: ClusterEvent = { kind: 'presence', uid: 'zoë' }
      await a.broadcast(change)
      await Promise.all([inbox.a.received(1), inbox.b.received(1), inbox.c.received(1)])
      const signals: ClusterEvent[] = [
        { kind: 'receipt', receipt: 'read', from: 'alice', to: 'bob', mid: '12345678901234567890' },
        { kind: 'typing', from: 'alice', to: 'bob' },
        { kind: 'carbon', message: (deliver(3) as Extract<ClusterEvent, { kind: 'deliver' }>).message },
      ]
      for (const e of signals) await a.publish('B', e)
      await inbox.b.received(1 + signals.length)
      t.same(inbox.a.events, [change])
      t.same(inbox.b.events, [change, ...signals], 'once each, in order')
      t.same(inbox.c.events, [change])
    })

    t.test('ping resolves while the broker is up', async (t) => {
      const a = await (await make(t)).broker()
      await a.subscribe('A', () => {})
      await a.ping()
      t.pass()
    })
  })
}
