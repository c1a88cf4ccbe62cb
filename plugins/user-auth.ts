// Guards the user routes (/users/:uid/...): with auth on, `Authorization: Bearer <JWT>`
// whose sub is :uid (401 without a valid token, 403 for another uid's data). ADMIN_TOKEN
// reads any user's data. In open mode everything passes, like bind.
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { AuthError } from '../src/auth/token-verifier.js'
import { bearerToken } from './admin-auth.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest/preHandler hook for routes with a `:uid` param. */
    userGuard: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

export default fp(
  async (app) => {
    const verifier = app.tokenVerifier
    // Only the token itself counts as admin here: the loopback fallback of the admin
    // routes must not open user data to whatever a local reverse proxy forwards.
    const adminTokenSet = app.config.adminToken !== undefined

    app.decorate('userGuard', async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      if (verifier === null) return
      if (adminTokenSet && app.isAdminRequest(request)) return
      const token = bearerToken(request)
      const uid = (request.params as Record<string, unknown> | undefined)?.uid
      try {
        await verifier.verify(token, typeof uid === 'string' ? uid : '')
      } catch (err) {
        if (!(err instanceof AuthError)) throw err
        if (err.reason === 'wrong-subject') {
          await reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: "the token is for another uid: not your data" })
          return
        }
        const message = err.reason === 'missing' ? 'send Authorization: Bearer <JWT>' : `invalid token: ${err.reason}`
        await reply
          .code(401)
          .header('www-authenticate', `Bearer error="${err.reason === 'missing' ? 'invalid_request' : 'invalid_token'}"`)
          .send({ statusCode: 401, error: 'Unauthorized', message })
      }
    })
  },
  { name: 'user-auth', dependencies: ['config', 'auth', 'admin-auth'] },
)
