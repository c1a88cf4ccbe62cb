// The offline-message webhook's outbox, for an operator: how many events wait, which failed
// and why, and a failed one sent again. Bearer ADMIN_TOKEN. Answers from the store whether
// WEBHOOK_URL is set or not (events written before it was unset stay readable).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import {
  AdminLoopbackOnly,
  AdminTokenRequired,
  errorResponses,
  RequestInvalid,
  WebhookEventNotFailed,
  WebhookEventNotFound,
} from '../plugins/http-errors.js'
import { WebhookEventId, WebhooksResponse } from '../src/protocol/rest.js'
import { adminSecurity, pageLimit } from './common-schemas.js'
import fp from 'fastify-plugin'

export const FAILED_DEFAULT_LIMIT = 50
export const FAILED_MAX_LIMIT = 200

const webhookRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', app.adminGuard)
  const guarded = [AdminTokenRequired, AdminLoopbackOnly]

  app.get(
    '/admin/webhooks',
    {
      schema: {
        tags: ['admin'],
        summary: 'The webhook outbox: pending events, and the failed ones, newest first; paginated',
        security: adminSecurity,
        querystring: Type.Object({
          before: Type.Optional(WebhookEventId),
          limit: pageLimit(FAILED_DEFAULT_LIMIT, FAILED_MAX_LIMIT, 'page size of `failed`'),
        }),
        response: { 200: WebhooksResponse, ...errorResponses(RequestInvalid, ...guarded) },
      },
    },
    async (request) => {
      const limit = Math.min(request.query.limit ?? FAILED_DEFAULT_LIMIT, FAILED_MAX_LIMIT)
      const { outbox } = app.store
      // The failed page, then the count: on PostgreSQL they are two queries, not one snapshot,
      // and read together an event that failed between them showed as both pending and failed.
      // In this order, an event on the page is no longer in the count.
      const rows = await outbox.failed(request.query.before ?? null, limit + 1)
      const pending = await outbox.pendingCount()
      const failed = rows.slice(0, limit)
      return { pending, failed, nextBefore: rows.length > limit ? failed[failed.length - 1]!.id : null }
    },
  )

  app.post(
    '/admin/webhooks/:id/retry',
    {
      schema: {
        tags: ['admin'],
        summary: 'Send a failed webhook event again',
        description: 'Puts the event back in the queue, due now, with a fresh count of tries (`WEBHOOK_MAX_ATTEMPTS`). Its id stays the same.',
        security: adminSecurity,
        params: Type.Object({ id: WebhookEventId }),
        response: {
          200: Type.Object({ id: WebhookEventId, requeued: Type.Literal(true) }, { description: 'requeued' }),
          ...errorResponses(RequestInvalid, ...guarded, WebhookEventNotFound, WebhookEventNotFailed),
        },
      },
    },
    async (request) => {
      const { id } = request.params
      const result = await app.store.outbox.retry(id, Date.now())
      if (result === 'unknown') throw new WebhookEventNotFound()
      if (result === 'not-failed') throw new WebhookEventNotFailed()
      request.log.info({ id }, 'failed webhook event requeued')
      app.webhook?.stored()
      return { id, requeued: true as const }
    },
  )
}

// Encapsulated like any route plugin; named, so a missing plugin it needs fails at start.
export default fp(webhookRoutes, { name: 'routes/webhooks', dependencies: ['store', 'webhook', 'admin-auth', 'error-handler'], encapsulate: true })
