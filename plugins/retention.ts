// RETENTION_DAYS: purges older messages at start and then periodically. The store
// deletes in small chunks, so a large purge never holds the event loop for long.
import fp from 'fastify-plugin'

const DAY_MS = 86_400_000
const PURGE_EVERY_MS = 10 * 60_000

export default fp(
  async (app) => {
    const days = app.config.retentionDays
    if (days === undefined) return
    let running: Promise<void> | undefined
    // A shutdown stops a purge between chunks instead of waiting for all of it.
    const shutdown = new AbortController()
    const purge = (): void => {
      if (running) return
      running = app.store
        .purgeBefore(Date.now() - days * DAY_MS, shutdown.signal)
        .then((removed) => {
          if (removed > 0) app.log.info({ removed, retentionDays: days }, 'purged old messages')
        })
        .catch((err: unknown) => app.log.error({ err }, 'retention purge failed'))
        .finally(() => (running = undefined))
    }
    const timer = setInterval(purge, Math.min(PURGE_EVERY_MS, days * DAY_MS))
    timer.unref()
    app.addHook('onReady', async () => purge())
    app.addHook('preClose', async () => {
      clearInterval(timer)
      shutdown.abort()
      await running
    })
  },
  { name: 'retention', dependencies: ['config', 'store'] },
)
