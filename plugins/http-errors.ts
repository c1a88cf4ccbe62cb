// Every HTTP error duet answers with, declared once: code, status, message and headers. Guards
// and routes throw these; plugins/error-handler.ts renders them into ErrorResponse, and the
// routes' OpenAPI responses are built from them. (WebSocket frame codes: src/protocol/codes.ts.)
import createError, { type FastifyErrorConstructor } from '@fastify/error'
import { errorCodes } from 'fastify'
import { Type, type Static, type TUnsafe } from '@sinclair/typebox'
import type { ErrorResponse } from '../src/protocol/rest.js'

export interface HttpErrorInfo {
  code: string
  statusCode: number
  /** The message, `%s` standing for what the thrower fills in. */
  message: string
  /** Response headers that go with it. */
  headers: Readonly<Record<string, string>>
  /**
   * The level the error handler logs it at: `error` when the answer stands for a failure
   * underneath (its cause). Unset: an answer the code chose, logged (if at all) where thrown.
   */
  log?: 'error' | 'info'
}

const byConstructor = new Map<object, HttpErrorInfo>()
const byCode = new Map<string, HttpErrorInfo>()

type HttpErrorConstructor<Args extends unknown[]> = FastifyErrorConstructor<{ code: string; statusCode: number }, Args>

function record(constructor: object, info: HttpErrorInfo): void {
  byConstructor.set(constructor, info)
  byCode.set(info.code, info)
}

/** `Args` are the values for the message's `%s`, then `{ cause }` when there is one. */
function declare<Args extends unknown[] = []>(
  code: string,
  statusCode: number,
  message: string,
  options: { headers?: Record<string, string>; log?: 'error' | 'info' } = {},
): HttpErrorConstructor<Args> {
  const constructor = createError<string, number, Args>(code, message, statusCode)
  record(constructor, { code, statusCode, message, headers: options.headers ?? {}, log: options.log })
  return constructor
}

const RETRY_LATER = { 'retry-after': '5' }

// plugins/admin-auth.ts: admin routes and /metrics.
// A 401 names the scheme it wants (RFC 9110 §11.6.1): the admin's bearer token.
const ADMIN_CHALLENGE = { 'www-authenticate': 'Bearer realm="duet admin"' }
export const AdminTokenRequired = declare('DUET_ADMIN_TOKEN_REQUIRED', 401, 'missing or invalid admin token: send Authorization: Bearer <ADMIN_TOKEN>', {
  headers: ADMIN_CHALLENGE,
})
export const AdminLoopbackOnly = declare('DUET_ADMIN_LOOPBACK_ONLY', 401, 'admin routes answer direct loopback clients only while ADMIN_TOKEN is unset', {
  headers: ADMIN_CHALLENGE,
})

// plugins/user-auth.ts: the user routes with auth on.
export const UserTokenMissing = declare('DUET_USER_TOKEN_MISSING', 401, 'send Authorization: Bearer <JWT>', {
  headers: { 'www-authenticate': 'Bearer error="invalid_request"' },
})
export const UserTokenInvalid = declare<[reason: string]>('DUET_USER_TOKEN_INVALID', 401, 'invalid token: %s', {
  headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
})
export const NotYourData = declare('DUET_NOT_YOUR_DATA', 403, 'the token is for another uid: not your data')

// plugins/host-check.ts: a Host header that names another site, while the server is local.
export const HostNotAllowed = declare<[host: string, served: string]>(
  'DUET_HOST_NOT_ALLOWED',
  403,
  'Host %s is not allowed: this server answers %s (add a name to ALLOWED_HOSTS to serve it)',
)

// routes/ws.ts: refused upgrades.
export const OriginNotAllowed = declare('DUET_ORIGIN_NOT_ALLOWED', 403, 'origin not allowed')
export const TooManyConnections = declare('DUET_TOO_MANY_CONNECTIONS', 503, 'too many connections: try again later', { headers: RETRY_LATER })
export const TooManyConnectionsFromAddress = declare('DUET_TOO_MANY_CONNECTIONS_FROM_ADDRESS', 429, 'too many connections from this address', {
  headers: RETRY_LATER,
})

// routes/admin.ts.
export const SessionNotFound = declare('DUET_SESSION_NOT_FOUND', 404, 'no such session')
export const PresenceUnavailable = declare<[reason: string, options: { cause: unknown }]>(
  'DUET_PRESENCE_UNAVAILABLE',
  503,
  'cluster presence unavailable: %s',
  { log: 'error' },
)

// routes/admin.ts: POST /admin/messages, refused as a WebSocket send is (code 413).
export const MessageTooLong = declare<[reason: string]>('DUET_MESSAGE_TOO_LONG', 413, '%s')

// routes/webhooks.ts: POST /admin/webhooks/:id/retry.
export const WebhookEventNotFound = declare('DUET_WEBHOOK_EVENT_NOT_FOUND', 404, 'no webhook event with this id (never written, or removed with its message)')
export const WebhookEventNotFailed = declare('DUET_WEBHOOK_EVENT_NOT_FAILED', 409, 'the webhook event has not failed: it is pending or sent')

// plugins/error-handler.ts: a path or method no route serves.
export const RouteNotFound = declare<[method: string, url: string]>('DUET_ROUTE_NOT_FOUND', 404, 'Route %s:%s not found')

/** Fastify's own, raised for a request that fails its route's schema: listed so routes and docs name it. */
export const RequestInvalid = errorCodes.FST_ERR_VALIDATION
record(RequestInvalid, { code: 'FST_ERR_VALIDATION', statusCode: 400, message: '<part>/<field> <what is wrong>', headers: {}, log: 'info' })

/** Every declared error, in declaration order (the README renders this table). */
export const HTTP_ERRORS: readonly HttpErrorInfo[] = [...byCode.values()]

/** The declaration behind an error's `code`, if the catalog has it. */
export const declaredError = (code: unknown): HttpErrorInfo | undefined => (typeof code === 'string' ? byCode.get(code) : undefined)

/** How a message reads in the docs: `%s` is whatever the thrower fills in. */
export const documentedMessage = (info: HttpErrorInfo): string => info.message.replaceAll('%s', '…')

/**
 * A route's error responses, for serialization and OpenAPI: under each status the given errors
 * answer with, the one ErrorResponse schema, described by their codes, and the headers they set.
 */
export function errorResponses(...errors: object[]): Record<number, TUnsafe<Static<typeof ErrorResponse>>> {
  const byStatus = new Map<number, HttpErrorInfo[]>()
  for (const error of errors) {
    const info = byConstructor.get(error)
    if (info === undefined) throw new Error('errorResponses takes the errors of plugins/http-errors.ts')
    byStatus.set(info.statusCode, [...(byStatus.get(info.statusCode) ?? []), info])
  }
  const responses: Record<number, TUnsafe<Static<typeof ErrorResponse>>> = {}
  for (const [status, infos] of byStatus) {
    const values = new Map<string, string[]>()
    for (const [name, value] of infos.flatMap((info) => Object.entries(info.headers))) values.set(name, [...(values.get(name) ?? []), value])
    const headers = Object.fromEntries([...values].map(([name, list]) => [name, Type.String({ description: list.map((v) => `\`${v}\``).join(' or ') })]))
    responses[status] = Type.Unsafe<Static<typeof ErrorResponse>>({
      $ref: 'ErrorResponse#',
      description: infos.map((info) => `\`${info.code}\`: \`${documentedMessage(info)}\``).join('; '),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
    })
  }
  return responses
}
