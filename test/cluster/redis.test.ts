// The cluster contracts against the Redis engines, on the machine's Redis, each subtest
// under a key prefix of its own that it deletes afterwards.
import type { Broker } from '../../src/cluster/broker.js'
import type { Presence } from '../../src/cluster/presence.js'
import { RedisBroker } from '../../src/cluster/redis-broker.js'
import { RedisPresence } from '../../src/cluster/redis-presence.js'
import { brokerContract } from './broker-contract.js'
import { presenceContract } from './presence-contract.js'
import { deleteKeys, freshPrefix, REDIS_URL } from './redis-helpers.js'

presenceContract('redis', async (t) => {
  const prefix = freshPrefix()
  const nodes: Presence[] = []
  t.teardown(async () => {
    await Promise.all(nodes.map((p) => p.close()))
    await deleteKeys(prefix)
  })
  return {
    node: async (nodeId) => {
      const presence = new RedisPresence({ redis: REDIS_URL, nodeId, prefix })
      nodes.push(presence)
      return presence.start()
    },
  }
})

brokerContract('redis', async (t) => {
  const prefix = freshPrefix()
  const brokers: Broker[] = []
  t.teardown(() => Promise.all(brokers.map((b) => b.close())))
  return {
    broker: async () => {
      const broker = new RedisBroker({ redis: REDIS_URL, prefix })
      brokers.push(broker)
      return broker.start()
    },
  }
})
