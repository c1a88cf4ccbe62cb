// Liveness and readiness for load balancers and orchestrators.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'

const Health = Type.Object({ status: Type.String() })
const Ready = Type.Object({ status: Type.String(), store: Type.String(), error: Type.Optional(Type.String()) })

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'The process is alive', response: { 200: Health } } },
    async () => ({ status: 'ok' }),
  )

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'The store is reachable',
        response: { 200: Ready, 503: Ready },
      },
    },
    async (_request, reply) => {
      try {
        await app.store.ping()
        return { status: 'ready', store: app.store.kind }
      } catch (err) {
        return reply.code(503).send({ status: 'unavailable', store: app.store.kind, error: (err as Error).message })
      }
    },
  )
}

export default healthRoutes
