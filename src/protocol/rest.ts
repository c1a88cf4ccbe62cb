// The REST answers the demo page and other clients read: one schema for the route that sends
// them and the code that reads them.
import { Type } from '@sinclair/typebox'
import { PREVIEW_LENGTH } from './preview.js'
import { Mid, Ref, SendFrame, Uid } from './schemas.js'

/** Every HTTP error's body; the errors themselves are declared in plugins/http-errors.ts. */
export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String({ description: 'the HTTP status text' }),
    message: Type.String(),
    code: Type.Optional(
      Type.String({ description: "what went wrong, for programs: `DUET_…` for duet's own errors, `FST_…` for Fastify's; absent on an internal failure (500)" }),
    ),
  },
  { $id: 'ErrorResponse', description: 'Every HTTP error has this shape.' },
)

const LastMessage = Type.Object(
  {
    mid: Mid,
    from: Type.String(),
    to: Type.String(),
    msg: Type.String({ description: `the text, cut to its first ${PREVIEW_LENGTH} characters (code points)` }),
    truncated: Type.Boolean({ description: '`msg` was cut: the whole text is in the history' }),
    ts: Type.Integer({ description: 'server time the message was stored, ms since epoch' }),
  },
  { $id: 'LastMessage' },
)

export const HistoryEntry = Type.Object(
  {
    mid: Mid,
    from: Type.String(),
    to: Type.String(),
    msg: Type.String(),
    ts: Type.Integer(),
    read: Type.Boolean({ description: 'the recipient has read it' }),
  },
  { $id: 'HistoryMessage' },
)

export const ConversationsResponse = Type.Object({
  conversations: Type.Array(
    Type.Object({
      peer: Type.String(),
      unread: Type.Integer({ description: 'messages from peer to uid not yet read' }),
      peerDelivered: Type.String({
        pattern: '^[0-9]{1,20}$',
        description: 'the highest mid of the messages uid sent peer that reached a live connection of peer ("0" when none); every one up to it is delivered',
      }),
      peerRead: Type.String({
        pattern: '^[0-9]{1,20}$',
        description: 'the highest mid of the messages uid sent peer that peer has read ("0" when none); every one up to it is read',
      }),
      online: Type.Boolean({ description: 'the peer has a live connection now' }),
      lastMessage: LastMessage,
    }),
  ),
  nextBefore: Type.Union([Type.String(), Type.Null()], {
    description: 'opaque cursor: pass as `before` for the next page (older activity); null at the end',
  }),
})

export const HistoryResponse = Type.Object({
  messages: Type.Array(HistoryEntry),
  nextBefore: Type.Union([Mid, Type.Null()], { description: 'pass as `before` for the next (older) page; null at the end' }),
})

/**
 * POST /admin/messages: a `send` frame on `from`'s behalf. The fields are the frame's own
 * schemas, so the checks are the frame's (and MAX_MESSAGE_LENGTH: parse.ts lengthRefusal).
 */
export const ServerSendBody = Type.Object(
  {
    from: Uid,
    to: SendFrame.properties.touid,
    msg: SendFrame.properties.msg,
    ref: Type.Optional(Ref),
  },
  { description: 'A message sent by the server on behalf of `from`, as if `from` had sent a `send` frame.' },
)

export const ServerSendResponse = Type.Object({
  mid: Mid,
  ts: Type.Integer({ description: 'server time the message was stored, ms since epoch' }),
})

/** The content type of an export: one HistoryEntry per line. */
export const NDJSON = 'application/x-ndjson'

/** A webhook event's id (src/store/outbox.ts eventId), stable across retries. */
export const WebhookEventId = Type.String({
  pattern: '^[0-9a-f]{16}-[0-9]{1,20}$',
  description: "the event id (`Duet-Event-Id`): the store's tag (16 hex digits), a dash, and the message's mid",
})

/** The `message` of a `message.offline` event: as the sender's 204 named it, with the text. */
export const WebhookMessage = Type.Object(
  {
    mid: Mid,
    from: Type.String(),
    to: Type.String(),
    msg: Type.String(),
    ts: Type.Integer({ description: 'server time the message was stored, ms since epoch (the 204 `ts`)' }),
  },
  { $id: 'WebhookMessage' },
)

export const FailedWebhookEvent = Type.Object({
  id: WebhookEventId,
  type: Type.Literal('message.offline'),
  attempts: Type.Integer({ description: 'tries made' }),
  lastError: Type.String({ description: 'why the last try failed: `HTTP <status>`, a timeout or a network error' }),
  lastAttemptAt: Type.Integer({ description: 'when the last try ended, ms since epoch' }),
  message: WebhookMessage,
})

export const WebhooksResponse = Type.Object({
  pending: Type.Integer({
    description: 'events waiting to be sent, on every node (in flight and scheduled retries included); the SQLite store counts up to 100 000',
  }),
  failed: Type.Array(FailedWebhookEvent, { description: 'failed events, newest first (by when they were written)' }),
  nextBefore: Type.Union([WebhookEventId, Type.Null()], { description: 'pass as `before` for the next (older) page of failed events; null at the end' }),
})
