// WEBHOOK_URL: the dispatcher that sends the outbox's offline-message events. Off (null) when
// unset: the hub then writes no events, and the chat path pays nothing for the feature.
import fp from 'fastify-plugin'
import { WebhookDispatcher } from '../src/webhook/dispatcher.js'

declare module 'fastify' {
  interface FastifyInstance {
    webhook: WebhookDispatcher | null
  }
}

export default fp(
  async (app) => {
    const { config } = app
    if (config.webhookUrl === undefined) {
      app.decorate('webhook', null)
      return
    }
    const dispatcher = new WebhookDispatcher({
      url: config.webhookUrl,
      // loadConfig refuses a WEBHOOK_URL without a long enough secret.
      secret: config.webhookSecret!,
      timeoutMs: config.webhookTimeoutMs,
      maxAttempts: config.webhookMaxAttempts,
      concurrency: config.webhookConcurrency,
      outbox: app.store.outbox,
      nodeId: config.nodeId,
      logger: app.log.child({ component: 'webhook' }),
      metrics: app.metrics.webhook,
    })
    app.decorate('webhook', dispatcher)
    // Events left by an earlier run (or written while this one started) go out once serving.
    app.addHook('onReady', async () => dispatcher.start())
    app.addHook('preClose', async () => dispatcher.close())
    app.log.info({ timeoutMs: config.webhookTimeoutMs, concurrency: config.webhookConcurrency }, 'offline-message webhook on')
  },
  { name: 'webhook', dependencies: ['config', 'store', 'metrics'] },
)
