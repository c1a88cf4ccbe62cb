// GET /metrics: Prometheus text format, admin-protected like /admin/* (it shows traffic).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { AdminLoopbackOnly, AdminTokenRequired, errorResponses } from '../plugins/http-errors.js'
import { adminSecurity } from './common-schemas.js'
import fp from 'fastify-plugin'

const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/metrics',
    {
      onRequest: app.adminGuard,
      schema: {
        tags: ['admin'],
        summary: 'Prometheus metrics: connections, binds, frames, errors, latencies, event-loop lag',
        security: adminSecurity,
        response: {
          200: { content: { 'text/plain': { schema: Type.String({ description: 'Prometheus text exposition format' }) } } },
          ...errorResponses(AdminTokenRequired, AdminLoopbackOnly),
        },
      },
    },
    async (_request, reply) => reply.type(app.metrics.contentType).send(await app.metrics.scrape()),
  )
}

// Encapsulated like any route plugin; named, so a missing plugin it needs fails at start.
export default fp(metricsRoutes, { name: 'routes/metrics', dependencies: ['metrics', 'admin-auth', 'error-handler'], encapsulate: true })
