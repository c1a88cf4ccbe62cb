// A user's conversations with unread counts, and the history of one conversation:
// what the original served as its message list and /user/gethistory.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ConversationsResponse, HistoryResponse } from '../src/protocol/rest.js'
import { Mid, Uid } from '../src/protocol/schemas.js'
import { errorResponses, NotYourData, RequestInvalid, UserTokenInvalid, UserTokenMissing } from '../plugins/http-errors.js'
import { exportStream } from '../src/store/user-export.js'
import { exportResponse, NDJSON, pageLimit, userSecurity } from './common-schemas.js'
import fp from 'fastify-plugin'

export const HISTORY_DEFAULT_LIMIT = 50
export const HISTORY_MAX_LIMIT = 200
export const CONVERSATIONS_DEFAULT_LIMIT = 50
export const CONVERSATIONS_MAX_LIMIT = 200

// Today the newest mid of the previous page's last conversation (the store's order); clients
// pass back what `nextBefore` said and never build one, so the format may change.
const Cursor = Type.String({ pattern: '^[0-9]{1,20}$', description: 'opaque: the `nextBefore` of the previous page' })


// 401/403 come from app.userGuard when auth is on (plugins/user-auth.ts).
const errors = errorResponses(RequestInvalid, UserTokenMissing, UserTokenInvalid, NotYourData)

const userRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/users/:uid/conversations',
    {
      onRequest: app.userGuard,
      schema: {
        tags: ['users'],
        security: userSecurity,
        summary: "The user's conversations by last activity, newest first, with unread counts; paginated",
        params: Type.Object({ uid: Uid }),
        querystring: Type.Object({
          before: Type.Optional(Cursor),
          limit: pageLimit(CONVERSATIONS_DEFAULT_LIMIT, CONVERSATIONS_MAX_LIMIT),
        }),
        response: { 200: ConversationsResponse, ...errors },
      },
    },
    async (request) => {
      const limit = Math.min(request.query.limit ?? CONVERSATIONS_DEFAULT_LIMIT, CONVERSATIONS_MAX_LIMIT)
      // One extra row tells whether another page exists. A page is bounded (200 previews of
      // 200 characters, 200 presence lookups), however many conversations the user has.
      const rows = await app.store.conversations(request.params.uid, request.query.before ?? null, limit + 1)
      const conversations = rows.slice(0, limit)
      const nextBefore = rows.length > limit ? conversations[conversations.length - 1]!.lastMessage.mid : null
      // Without presence (a Redis outage) only this node's sessions are known: the list still
      // answers, with every peer not bound here shown offline, rather than failing.
      let presenceDown = false
      const online = await Promise.all(
        conversations.map((c) =>
          app.hub.registry.isOnline(c.peer).catch(() => {
            presenceDown = true
            return false
          }),
        ),
      )
      if (presenceDown) request.log.warn('presence unavailable: online shown for this node only')
      return { conversations: conversations.map((c, i) => ({ ...c, online: online[i]! })), nextBefore }
    },
  )

  app.get(
    '/users/:uid/conversations/:peer/messages',
    {
      onRequest: app.userGuard,
      schema: {
        tags: ['users'],
        security: userSecurity,
        summary: 'History of one conversation, newest first, paginated by mid',
        params: Type.Object({ uid: Uid, peer: Uid }),
        querystring: Type.Object({
          before: Type.Optional(Mid),
          limit: pageLimit(HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT),
        }),
        response: { 200: HistoryResponse, ...errors },
      },
    },
    async (request) => {
      const { uid, peer } = request.params
      const limit = Math.min(request.query.limit ?? HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT)
      // One extra row tells whether an older page exists.
      const rows = await app.store.history(uid, peer, request.query.before ?? null, limit + 1)
      const messages = rows.slice(0, limit)
      const nextBefore = rows.length > limit ? messages[messages.length - 1]!.mid : null
      return { messages, nextBefore }
    },
  )

  app.get(
    '/users/:uid/export',
    {
      onRequest: app.userGuard,
      schema: {
        tags: ['users'],
        security: userSecurity,
        summary: 'Every message to or from the user, oldest first, as NDJSON',
        params: Type.Object({ uid: Uid }),
        response: { 200: exportResponse, ...errors },
      },
    },
    async (request, reply) => reply.type(NDJSON).send(exportStream(app.store, request.params.uid)),
  )
}

// Encapsulated like any route plugin; named, so a missing plugin it needs fails at start.
export default fp(userRoutes, { name: 'routes/users', dependencies: ['store', 'hub', 'user-auth', 'error-handler'], encapsulate: true })
