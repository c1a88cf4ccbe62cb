// Creates the hub: the core that routes frames between live connections and the store.
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
    app.decorate(
      'hub',
      new Hub({
        store: app.store,
        logger: app.log,
        nodeId: config.nodeId,
        multiDevice: config.multiDevice,
        maxMessageLength: config.maxMessageLength,
      }),
    )
  },
  { name: 'hub', dependencies: ['config', 'store'] },
)
