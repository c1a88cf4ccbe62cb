// Creates the hub: the core that routes frames between live connections, the store and
// the other nodes.
import fp from 'fastify-plugin'
import { Hub } from '../src/hub/hub.js'

declare module 'fastify' {
  interface FastifyInstance {
    hub: Hub
  }
}

export default fp(
  async (app) => {
    const { config } = app
    const hub = new Hub({
      store: app.store,
      presence: app.cluster.presence,
      broker: app.cluster.broker,
      logger: app.log,
      nodeId: config.nodeId,
      multiDevice: config.multiDevice,
      maxMessageLength: config.maxMessageLength,
      verifier: app.tokenVerifier,
      rateLimit: config.rateLimit,
      rateBurst: config.rateBurst,
      maxBindAttempts: config.maxBindAttempts,
      slowConsumerBytes: config.slowConsumerBytes,
      metrics: app.metrics.hub,
      readReceipts: config.readReceipts,
      maxWatched: config.maxWatched,
      offlineEvents: app.webhook ?? undefined,
    })
    await hub.start()
    app.decorate('hub', hub)
    // Catches replacements whose pub/sub message was lost (an outage): the owner record in
    // presence decides. Cheap in process; one Redis round trip per period in a cluster.
    const timer = setInterval(() => {
      hub.registry.reconcile().catch((err: unknown) => app.log.warn({ err }, 'presence reconcile failed'))
      hub.refreshPresence()
    }, Math.max(1000, Math.floor(config.presenceLeaseMs / 3)))
    timer.unref()
    app.addHook('preClose', async () => clearInterval(timer))
  },
  { name: 'hub', dependencies: ['config', 'store', 'cluster', 'auth', 'metrics', 'webhook'] },
)
