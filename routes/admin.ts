// Admin routes: who is online and which connections are live; a message sent on a user's
// behalf; a user's export and erasure. Bearer ADMIN_TOKEN.
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type, type TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import {
  AdminLoopbackOnly,
  AdminTokenRequired,
  errorResponses,
  MessageTooLong,
  PresenceUnavailable,
  RequestInvalid,
  SessionNotFound,
} from '../plugins/http-errors.js'
import { lengthRefusal, schemaRefusal } from '../src/protocol/parse.js'
import { ServerSendBody, ServerSendResponse } from '../src/protocol/rest.js'
import { Uid } from '../src/protocol/schemas.js'
import { exportStream } from '../src/store/user-export.js'
import { adminSecurity, exportResponse, NDJSON } from './common-schemas.js'
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
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) }),
        response: { 204: Type.Null({ description: 'disconnected' }), ...errorResponses(RequestInvalid, ...errors, SessionNotFound) },
      },
    },
    async (request, reply) => {
      if (!(await fromPresence(() => app.hub.registry.disconnect(request.params.id)))) throw new SessionNotFound()
      return reply.code(204).send(null)
    },
  )

  // The WebSocket `send`'s path and checks: its schemas, checked and refused as a frame is
  // (TypeBox, with the frame's 400 text; Ajv would coerce a number to a string), and its
  // length limit. A body holds a `msg` of MAX_MESSAGE_LENGTH characters (code points) at 12
  // bytes each (an astral one escaped as two \uXXXX, as many JSON encoders write it), and the ids.
  const { maxMessageLength } = app.config
  await app.register(async (sending) => {
    sending.setValidatorCompiler<TSchema>(({ schema }) => {
      const check = TypeCompiler.Compile(schema)
      return (value) => {
        const refusal = schemaRefusal(check, value, 'body')
        return refusal === null ? { value } : { error: new Error(refusal) }
      }
    })
    sending.withTypeProvider<TypeBoxTypeProvider>().post(
      '/admin/messages',
      {
        bodyLimit: Math.max(1 << 20, maxMessageLength * 12 + 4096),
        schema: {
          tags: ['admin'],
          summary: "Send a message on a user's behalf, as a WebSocket send from them",
          description:
            'Stored before the answer, pushed live to the recipient, counted unread. `201` for a new message; ' +
            '`200` with the same `mid` when (`from`, `to`, `ref`) was sent already.',
          security: adminSecurity,
          body: ServerSendBody,
          response: {
            200: { ...ServerSendResponse, description: 'a resend: (`from`, `to`, `ref`) was stored already' },
            201: { ...ServerSendResponse, description: 'stored' },
            ...errorResponses(RequestInvalid, AdminTokenRequired, AdminLoopbackOnly, MessageTooLong),
          },
        },
      },
      async (request, reply) => {
        const { from, to, msg, ref } = request.body
        const tooLong = lengthRefusal(msg, maxMessageLength)
        if (tooLong !== null) throw new MessageTooLong(tooLong)
        const sent = await app.hub.sendFrom(from, { type: 'send', touid: to, msg, ...(ref === undefined ? {} : { ref }) })
        return reply.code(sent.duplicate ? 200 : 201).send({ mid: sent.mid, ts: sent.ts })
      },
    )
  })

  app.delete(
    '/admin/users/:uid',
    {
      schema: {
        tags: ['admin'],
        summary: 'Erase a user: every message to or from them, their connections closed (4003)',
        description:
          "Closes the user's connections on every node (close code 4003), then deletes every message to or from them " +
          "(a chunk at a time: chat traffic goes on meanwhile), their refs and read state. Idempotent. Without presence (503) nothing is deleted.",
        security: adminSecurity,
        params: Type.Object({ uid: Uid }),
        response: {
          200: Type.Object({ deleted: Type.Integer({ description: 'messages deleted' }) }),
          ...errorResponses(RequestInvalid, ...errors),
        },
      },
    },
    async (request) => {
      const { uid } = request.params
      await fromPresence(() => app.hub.registry.closeUser(uid))
      const deleted = await app.hub.eraseUser(uid)
      request.log.info({ uid, deleted }, 'user erased')
      return { deleted }
    },
  )

  app.get(
    '/admin/users/:uid/export',
    {
      schema: {
        tags: ['admin'],
        summary: 'Every message to or from a user, oldest first, as NDJSON',
        security: adminSecurity,
        params: Type.Object({ uid: Uid }),
        response: { 200: exportResponse, ...errorResponses(RequestInvalid, AdminTokenRequired, AdminLoopbackOnly) },
      },
    },
    async (request, reply) => reply.type(NDJSON).send(exportStream(app.store, request.params.uid)),
  )
}

// Encapsulated like any route plugin; named, so a missing plugin it needs fails at start.
export default fp(adminRoutes, { name: 'routes/admin', dependencies: ['config', 'store', 'hub', 'admin-auth', 'error-handler'], encapsulate: true })
