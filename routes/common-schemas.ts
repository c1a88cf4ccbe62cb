// Security requirements more than one route declares. (Error responses: plugins/http-errors.ts.)
export const adminSecurity = [{ bearerAuth: [] }]
/** A user route takes the user's JWT or ADMIN_TOKEN (plugins/user-auth.ts). */
export const userSecurity: Array<Record<string, string[]>> = [{ userJwt: [] }, { bearerAuth: [] }]
