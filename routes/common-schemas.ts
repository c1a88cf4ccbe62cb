// Schemas more than one route answers with.
import { Type } from '@sinclair/typebox'

export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String(),
    message: Type.String(),
  },
  { $id: 'ErrorResponse', description: 'Every HTTP error has this shape.' },
)

export const adminSecurity = [{ bearerAuth: [] }]
/** A user route takes the user's JWT or ADMIN_TOKEN (plugins/user-auth.ts). */
export const userSecurity: Array<Record<string, string[]>> = [{ userJwt: [] }, { bearerAuth: [] }]
