// The cluster engines: in-process presence and broker on a single node, Redis ones when
// REDIS_URL is set. The hub sees only the Presence and Broker contracts.
import fp from 'fastify-plugin'
import { createCluster, type Cluster } from '../src/cluster/create-cluster.js'

declare module 'fastify' {
  interface FastifyInstance {
    cluster: Cluster
  }
}

export default fp(
  async (app) => {
    const { config } = app
    let cluster: Cluster
    try {
      cluster = await createCluster({
        redisUrl: config.redisUrl,
        nodeId: config.nodeId,
        prefix: config.redisPrefix,
        leaseMs: config.presenceLeaseMs,
        logger: app.log,
      })
    } catch (err) {
      throw new Error(`REDIS_URL: cannot reach Redis: ${(err as Error).message}`, { cause: err })
    }
    app.decorate('cluster', cluster)
    // After the hub has drained (its preClose), before the store closes.
    app.addHook('onClose', async () => cluster.close())
    app.log.info({ mode: cluster.mode }, 'cluster ready')
  },
  { name: 'cluster', dependencies: ['config'] },
)
