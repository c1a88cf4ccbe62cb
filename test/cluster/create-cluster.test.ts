// The engine is configuration: no Redis URL, in process; a Redis URL, Redis, with a heartbeat.
import { Redis } from 'ioredis'
import { pino } from 'pino'
import t from 'tap'
import type { ClusterEvent } from '../../src/cluster/broker.js'
import { createCluster } from '../../src/cluster/create-cluster.js'
import { LocalBroker } from '../../src/cluster/local-broker.js'
import { LocalPresence } from '../../src/cluster/local-presence.js'
import { eventually } from '../helpers/eventually.js'
import { entry } from './presence-contract.js'
import { deleteKeys, freshPrefix, keysUnder, REDIS_URL } from './redis-helpers.js'

const logger = pino({ level: 'silent' })

t.test('without a Redis URL: in-process engines', async (t) => {
  const cluster = await createCluster({ nodeId: 'solo', logger })
  t.teardown(() => cluster.close())
  t.equal(cluster.mode, 'local')
  t.ok(cluster.presence instanceof LocalPresence)
  t.ok(cluster.broker instanceof LocalBroker)
  await cluster.presence.add(entry('s', 'alice', 'solo'), true)
  t.equal((await cluster.presence.sessionsOf('alice')).length, 1)
})

t.test('with a Redis URL: Redis engines, a heartbeat renewing the lease, a clean leave', async (t) => {
  const prefix = freshPrefix()
  t.teardown(() => deleteKeys(prefix))
  const cluster = await createCluster({ redisUrl: REDIS_URL, nodeId: 'n1', prefix, leaseMs: 300, logger })
  t.equal(cluster.mode, 'redis')
  const s = entry('s', 'alice', 'n1')
  await cluster.presence.add(s, true)
  const received: ClusterEvent[] = []
  await cluster.broker.subscribe('n1', (e) => received.push(e))
  await cluster.broker.publish('n1', { kind: 'close', sessionId: 's', reason: 'kicked' })
  await eventually(() => received.length === 1, 'the event')

  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.disconnect())
  const lease = async (): Promise<number> => Number(await redis.zscore(`${prefix}presence:leases`, 'n1'))
  const first = await lease()
  await eventually(async () => (await lease()) > first, 'the heartbeat to renew the lease')
  t.same(await cluster.presence.sessionsOf('alice'), [s], 'still present past the first lease')

  await cluster.close()
  t.same(await keysUnder(prefix), [], 'a closed node leaves nothing behind')
})
