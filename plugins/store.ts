// Opens the MessageStore named by STORE_URL and closes it last, after the hub has drained.
import fp from 'fastify-plugin'
import { createMessageStore } from '../src/store/create-store.js'
import type { MessageStore } from '../src/store/message-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: MessageStore
  }
}

export default fp(
  async (app) => {
    const store = await createMessageStore(app.config.storeUrl, { logger: app.log })
    app.decorate('store', store)
    app.addHook('onClose', async () => {
      await store.close()
    })
    app.log.info({ store: store.kind }, 'message store ready')
  },
  { name: 'store', dependencies: ['config'] },
)
