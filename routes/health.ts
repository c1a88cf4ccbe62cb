// Liveness and readiness for load balancers and orchestrators.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import fp from 'fastify-plugin'

const Health = Type.Object({ status: Type.String() })
const Check = Type.Union([Type.Literal('ok'), Type.String({ description: 'what failed' })])
const Ready = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
  store: Type.String({ description: 'the store engine: memory, sqlite or postgres' }),
  cluster: Type.String({ description: 'local (one node) or redis' }),
  checks: Type.Object({ store: Check, presence: Check, broker: Check }),
})

/** "ok", or why the check failed. */
const check = (probe: Promise<void>): Promise<string> =>
  probe.then(
    () => 'ok',
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  )

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
        summary: 'The store and, in cluster mode, Redis are reachable',
        response: { 200: Ready, 503: Ready },
      },
    },
    async (_request, reply) => {
      const { presence, broker, mode } = app.cluster
      const [store, presenceCheck, brokerCheck] = await Promise.all([
        check(app.store.ping()),
        check(presence.ping()),
        check(broker.ping()),
      ])
      const checks = { store, presence: presenceCheck, broker: brokerCheck }
      const ready = Object.values(checks).every((c) => c === 'ok')
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'unavailable', store: app.store.kind, cluster: mode, checks })
    },
  )
}

// Encapsulated like any route plugin; named, so a missing plugin it needs fails at start.
export default fp(healthRoutes, { name: 'routes/health', dependencies: ['store', 'cluster'], encapsulate: true })
