// Redis killed and restarted under a running node (a private redis-server: never the shared
// one): calls fail fast while it is away, then presence and subscriptions come back by themselves.
import t from 'tap'
import type { ClusterEvent } from '../../src/cluster/broker.js'
import { RedisBroker } from '../../src/cluster/redis-broker.js'
import { RedisPresence } from '../../src/cluster/redis-presence.js'
import { eventually } from '../helpers/eventually.js'
import { entry } from './presence-contract.js'
import { PrivateRedis } from './redis-helpers.js'

const close = (sessionId: string): ClusterEvent => ({ kind: 'close', sessionId, reason: 'kicked' })

/** Resolves with how long `call` took to reject; fails the test if it resolves. */
async function rejectsIn(call: () => Promise<unknown>): Promise<number> {
  const start = Date.now()
  try {
    await call()
  } catch {
    return Date.now() - start
  }
  throw new Error('expected a rejection while Redis is down')
}

t.test('Redis restarted empty: calls reject fast meanwhile, then everything comes back', async (t) => {
  const server = await PrivateRedis.start()
  t.teardown(() => server.kill())
  const prefix = 'duet_test_restart:'
  const [a, b] = [
    await new RedisPresence({ redis: server.url, nodeId: 'A', prefix }).start(),
    await new RedisPresence({ redis: server.url, nodeId: 'B', prefix }).start(),
  ]
  const [brokerA, brokerB] = [
    await new RedisBroker({ redis: server.url, prefix }).start(),
    await new RedisBroker({ redis: server.url, prefix }).start(),
  ]
  t.teardown(() => Promise.all([a.close(), b.close(), brokerA.close(), brokerB.close()]))
  const received: ClusterEvent[] = []
  await brokerB.subscribe('B', (e) => received.push(e))
  const s1 = entry('s1', 'alice', 'A')
  const s3 = entry('s3', 'carol', 'B')
  await a.add(s1, true)
  await b.add(s3, true)

  await server.kill()
  await eventually(async () => (await rejectsIn(() => a.ping())) >= 0, 'the outage to be noticed')
  const s2 = entry('s2', 'bob', 'A')
  const calls: Record<string, () => Promise<unknown>> = {
    'presence.add': () => a.add(s2, true),
    'presence.sessionsOf': () => a.sessionsOf('alice'),
    'presence.sessions': () => a.sessions(),
    'presence.missing': () => a.missing([s1]),
    'presence.heartbeat': () => a.heartbeat(),
    'broker.publish': () => brokerA.publish('B', close('lost')),
    'broker.ping': () => brokerB.ping(),
  }
  for (const [name, call] of Object.entries(calls)) t.ok((await rejectsIn(call)) < 1000, `${name} rejects fast`)

  await server.restart()
  const back = await eventually(async () => {
    const [alice, bob, carol] = await Promise.all([b.sessionsOf('alice'), b.sessionsOf('bob'), a.sessionsOf('carol')])
    return alice.length + bob.length + carol.length === 3 && { alice, bob, carol }
  }, 'every node to write its sessions back')
  t.same(back, { alice: [s1], bob: [s2], carol: [s3] }, 'including the one added during the outage')

  // Publish probes until the resubscribed subscriber hears one; then order holds again.
  await eventually(async () => {
    await brokerA.publish('B', close('probe'))
    return received.length > 0
  }, 'the subscriber to be back')
  // Probes still in flight may land among the burst: compare the burst alone.
  const burst = (): string[] =>
    received.map((e) => (e.kind === 'close' ? e.sessionId : '')).filter((id) => id.startsWith('after-'))
  for (let i = 0; i < 100; i++) await brokerA.publish('B', close(`after-${i}`))
  await eventually(() => burst().length >= 100, 'the burst')
  t.same(burst(), Array.from({ length: 100 }, (_, i) => `after-${i}`))
  const lost = received.filter((e) => e.kind === 'close' && e.sessionId === 'lost')
  t.same(lost, [], 'pub/sub keeps nothing from the outage (recovery reads the store)')
  await brokerB.ping()
  await a.ping()
})
