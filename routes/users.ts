// A user's conversations with unread counts, and the history of one conversation:
// what the original served as its message list and /user/gethistory.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ConversationsResponse, HistoryResponse } from '../src/protocol/rest.js'
import { Mid, Uid } from '../src/protocol/schemas.js'
import { errorResponses, NotYourData, RequestInvalid, UserTokenInvalid, UserTokenMissing } from '../plugins/http-errors.js'
import { userSecurity } from './common-schemas.js'
import fp from 'fastify-plugin'

export const HISTORY_DEFAULT_LIMIT = 50
export const HISTORY_MAX_LIMIT = 200

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
        summary: "The user's conversations, most recent first, with unread counts",
        params: Type.Object({ uid: Uid }),
        response: { 200: ConversationsResponse, ...errors },
      },
    },
    async (request) => {
      const conversations = await app.store.conversations(request.params.uid)
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
      return { conversations: conversations.map((c, i) => ({ ...c, online: online[i]! })) }
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
          limit: Type.Optional(
            Type.Integer({
              minimum: 1,
              default: HISTORY_DEFAULT_LIMIT,
              description: `page size; default ${HISTORY_DEFAULT_LIMIT}, larger values are capped at ${HISTORY_MAX_LIMIT}`,
            }),
          ),
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
}

// Encapsulated like any route plugin; named, so a missing plugin it needs fails at start.
export default fp(userRoutes, { name: 'routes/users', dependencies: ['store', 'hub', 'user-auth', 'error-handler'], encapsulate: true })
