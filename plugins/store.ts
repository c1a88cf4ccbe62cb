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
    let store: MessageStore
    try {
      store = await createMessageStore(app.config.storeUrl, { logger: app.log })
    } catch (err) {
      // Name the setting: "ECONNREFUSED" alone does not tell an operator what to fix.
      throw new Error(`STORE_URL: cannot open the ${app.config.storeUrl.split(':')[0]} store: ${(err as Error).message}`, { cause: err })
    }
    app.decorate('store', store)
    app.addHook('onClose', async () => {
      await store.close()
    })
    app.log.info({ store: store.kind }, 'message store ready')
  },
  { name: 'store', dependencies: ['config'] },
)
