// Every route plugin names the plugins it needs: registered without them, the app fails at
// start with Fastify's own error, not at the first request.
import Fastify from 'fastify'
import t from 'tap'
import adminRoutes from '../../routes/admin.js'
import healthRoutes from '../../routes/health.js'
import metricsRoutes from '../../routes/metrics.js'
import userRoutes from '../../routes/users.js'
import webhookRoutes from '../../routes/webhooks.js'
import wsRoute from '../../routes/ws.js'

const routes = {
  'routes/admin': adminRoutes,
  'routes/health': healthRoutes,
  'routes/metrics': metricsRoutes,
  'routes/users': userRoutes,
  'routes/webhooks': webhookRoutes,
  'routes/ws': wsRoute,
}

for (const [name, plugin] of Object.entries(routes)) {
  t.test(`${name} alone does not start`, async (t) => {
    const app = Fastify({ logger: false })
    app.register(plugin)
    await t.rejects(async () => app.ready(), { code: 'FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED' }, 'names a missing plugin')
    await app.close().catch(() => undefined)
  })
}
