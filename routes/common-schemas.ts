// Security requirements and responses more than one route declares. (Error responses:
// plugins/http-errors.ts.)
import type { Readable } from 'node:stream'
import { Type } from '@sinclair/typebox'
import { HistoryEntry, NDJSON } from '../src/protocol/rest.js'

export { NDJSON }

/**
 * A keyword for Fastify's Ajv (app.ts): the number must be finite. Ajv coerces the query
 * strings "Infinity", "-Infinity" and "1e400" to infinite numbers that pass `type: integer`
 * and skip `minimum` (its number checks look at finite numbers only): a page size of -Infinity
 * reached the stores and came back as a 500. An `x-` name, which OpenAPI allows.
 */
export const FINITE = 'x-finite'

/** Ajv's shape of a keyword's check: the errors of its last call on the function itself. */
interface KeywordCheck {
  (schema: boolean, data: unknown): boolean
  errors?: Array<{ keyword: string; message: string; params: Record<string, unknown> }>
}

const finite: KeywordCheck = (schema, data) => {
  if (!schema || typeof data !== 'number' || Number.isFinite(data)) return true
  finite.errors = [{ keyword: FINITE, message: 'must be a finite number', params: {} }]
  return false
}

export const finiteKeyword = { keyword: FINITE, schemaType: 'boolean' as const, errors: true as const, validate: finite }

/** A page size: at least 1; larger than `max` is capped, not refused. */
export const pageLimit = (fallback: number, max: number, what = 'page size') =>
  Type.Optional(Type.Integer({ minimum: 1, [FINITE]: true, default: fallback, description: `${what}; default ${fallback}, larger values are capped at ${max}` }))

export const adminSecurity = [{ bearerAuth: [] }]
/** A user route takes the user's JWT or ADMIN_TOKEN (plugins/user-auth.ts). */
export const userSecurity: Array<Record<string, string[]>> = [{ userJwt: [] }, { bearerAuth: [] }]

/** A user's export (admin and user routes): a stream, never serialized, documented per line. */
export const exportResponse = {
  description: 'one message per line, oldest first (by `mid`), with the fields of the history route',
  // What the handler sends is the stream; what the document shows is one of its lines.
  content: { [NDJSON]: { schema: Type.Unsafe<Readable>(HistoryEntry) } },
}
