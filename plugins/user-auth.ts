// Guards the user routes (/users/:uid/...): with auth on, `Authorization: Bearer <JWT>`
// whose sub is :uid (401 without a valid token, 403 for another uid's data). ADMIN_TOKEN
// reads any user's data. In open mode everything passes, like bind.
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { AuthError } from '../src/auth/token-verifier.js'
import { bearerToken } from './admin-auth.js'
import { NotYourData, UserTokenInvalid, UserTokenMissing } from './http-errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest/preHandler hook for routes with a `:uid` param. */
    userGuard: (request: FastifyRequest) => Promise<void>
  }
}

export default fp(
  async (app) => {
    const verifier = app.tokenVerifier
    // Only the token itself counts as admin here: the loopback fallback of the admin
    // routes must not open user data to whatever a local reverse proxy forwards.
    const adminTokenSet = app.config.adminToken !== undefined

    app.decorate('userGuard', async (request: FastifyRequest): Promise<void> => {
      if (verifier === null) return
      if (adminTokenSet && app.isAdminRequest(request)) return
      const token = bearerToken(request)
      const uid = (request.params as Record<string, unknown> | undefined)?.uid
      try {
        await verifier.verify(token, typeof uid === 'string' ? uid : '')
      } catch (err) {
        if (!(err instanceof AuthError)) throw err
        if (err.reason === 'wrong-subject') throw new NotYourData()
        throw err.reason === 'missing' ? new UserTokenMissing() : new UserTokenInvalid(err.reason)
      }
    })
  },
  { name: 'user-auth', dependencies: ['config', 'auth', 'admin-auth', 'error-handler'] },
)
