// Picks the cluster engines from configuration: in-process without a Redis URL (no Redis
// code on the single-node path: ioredis is not even loaded), Redis with one. Also runs the
// presence heartbeat, since this is the one place that knows the lease.
import type { Broker } from './broker.js'
import { LocalBroker } from './local-broker.js'
import { LocalPresence } from './local-presence.js'
import type { Presence } from './presence.js'
import type { Logger } from '../logger.js'

export interface ClusterOptions {
  /** Unset: a single node, everything in process. */
  redisUrl?: string
  nodeId: string
  /** Redis key and channel prefix. Default 'duet:'. */
  prefix?: string
  /** Presence lease. Default 15000 ms; renewed every leaseMs/3. */
  leaseMs?: number
  logger: Logger
}

export interface Cluster {
  mode: 'local' | 'redis'
  presence: Presence
  broker: Broker
  close(): Promise<void>
}

/** Resolves once the engines can serve; with Redis, rejects if it is not reachable in time. */
export async function createCluster(options: ClusterOptions): Promise<Cluster> {
  const { redisUrl, nodeId, prefix, logger } = options
  if (redisUrl === undefined) {
    const presence = new LocalPresence(nodeId)
    const broker = new LocalBroker(undefined, logger)
    return {
      mode: 'local',
      presence,
      broker,
      close: async () => {
        await broker.close()
        await presence.close()
      },
    }
  }

  const [{ Redis }, { RedisBroker }, { closeRedis, FAIL_FAST, logOutages }, { RedisPresence }] = await Promise.all([
    import('ioredis'),
    import('./redis-broker.js'),
    import('./redis-connection.js'),
    import('./redis-presence.js'),
  ])
  // One command connection shared by presence and publishing; the broker adds its subscriber.
  const redis = new Redis(redisUrl, FAIL_FAST)
  logOutages(redis, logger, 'cluster')
  const leaseMs = options.leaseMs ?? 15_000
  const presence = new RedisPresence({ redis, nodeId, prefix, leaseMs, logger })
  const broker = new RedisBroker({ redis, prefix, logger })
  try {
    await Promise.all([presence.start(), broker.start()])
  } catch (err) {
    await broker.close()
    await presence.close()
    await closeRedis(redis)
    throw err
  }
  const heartbeat = setInterval(() => {
    // Failures are logged by the connection's outage log; the next beat retries.
    presence.heartbeat().catch((err: unknown) => logger.debug({ err }, 'cluster: heartbeat failed'))
  }, leaseMs / 3)
  heartbeat.unref()
  logger.info({ node: nodeId, leaseMs }, 'cluster: presence and broker on Redis')
  return {
    mode: 'redis',
    presence,
    broker,
    close: async () => {
      clearInterval(heartbeat)
      await broker.close()
      await presence.close()
      await closeRedis(redis)
    },
  }
}
