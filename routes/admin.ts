// Admin routes: who is online and which connections are live. Bearer ADMIN_TOKEN.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { AdminLoopbackOnly, AdminTokenRequired, errorResponses, PresenceUnavailable, RequestInvalid, SessionNotFound } from '../plugins/http-errors.js'
import { adminSecurity } from './common-schemas.js'
import fp from 'fastify-plugin'

const OnlineResponse = Type.Object({
  count: Type.Integer(),
  uids: Type.Array(Type.String()),
})

const SessionEntry = Type.Object({
  id: Type.String(),
  uid: Type.String(),
  joined: Type.Union([Type.String(), Type.Null()], { description: 'the open conversation (peer uid) or null' }),
  connectedAt: Type.String({ format: 'date-time' }),
  remoteAddress: Type.String(),
  node: Type.String(),
})

const SessionsResponse = Type.Object({
  count: Type.Integer(),
  sessions: Type.Array(SessionEntry),
})

const adminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', app.adminGuard)
  const errors = [AdminTokenRequired, AdminLoopbackOnly, PresenceUnavailable]

  // The cluster-wide view comes from presence; in a Redis outage say so (503), not "500".
  const fromPresence = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call()
    } catch (err) {
      throw new PresenceUnavailable(err instanceof Error ? err.message : String(err), { cause: err })
    }
  }

  app.get(
    '/admin/online',
    {
      schema: {
        tags: ['admin'],
        summary: 'Bound users online now',
        security: adminSecurity,
        response: { 200: OnlineResponse, ...errorResponses(...errors) },
      },
    },
    async () => {
      const uids = [...new Set((await fromPresence(() => app.hub.registry.clusterSessions())).map((s) => s.uid))]
      return { count: uids.length, uids }
    },
  )

  app.get(
    '/admin/sessions',
    {
      schema: {
        tags: ['admin'],
        summary: 'Live bound connections',
        security: adminSecurity,
        response: { 200: SessionsResponse, ...errorResponses(...errors) },
      },
    },
    async () => {
      const sessions = await fromPresence(() => app.hub.registry.clusterSessions())
      return { count: sessions.length, sessions }
    },
  )

  app.delete(
    '/admin/sessions/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'Disconnect one session',
        security: adminSecurity,
        params: Type.Object({ id: Type.String({ maxLength: 128 }) }),
        response: { 204: Type.Null({ description: 'disconnected' }), ...errorResponses(RequestInvalid, ...errors, SessionNotFound) },
      },
    },
    async (request, reply) => {
      if (!(await fromPresence(() => app.hub.registry.disconnect(request.params.id)))) throw new SessionNotFound()
      return reply.code(204).send(null)
    },
  )
}

// Encapsulated like any route plugin; named, so a missing plugin it needs fails at start.
export default fp(adminRoutes, { name: 'routes/admin', dependencies: ['hub', 'admin-auth', 'error-handler'], encapsulate: true })
