// Security requirements and responses more than one route declares. (Error responses:
// plugins/http-errors.ts.)
import type { Readable } from 'node:stream'
import { Type } from '@sinclair/typebox'
import { HistoryEntry, NDJSON } from '../src/protocol/rest.js'

export { NDJSON }

export const adminSecurity = [{ bearerAuth: [] }]
/** A user route takes the user's JWT or ADMIN_TOKEN (plugins/user-auth.ts). */
export const userSecurity: Array<Record<string, string[]>> = [{ userJwt: [] }, { bearerAuth: [] }]

/** A user's export (admin and user routes): a stream, never serialized, documented per line. */
export const exportResponse = {
  description: 'one message per line, oldest first (by `mid`), with the fields of the history route',
  // What the handler sends is the stream; what the document shows is one of its lines.
  content: { [NDJSON]: { schema: Type.Unsafe<Readable>(HistoryEntry) } },
}
