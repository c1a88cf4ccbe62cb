// The JWT verifier shared by bind (through the hub) and the user routes; null in open mode.
import fp from 'fastify-plugin'
import { createTokenVerifier, type TokenVerifier } from '../src/auth/token-verifier.js'
import { JWT_SECRET_MIN } from '../src/config/schema.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokenVerifier: TokenVerifier | null
  }
}

export default fp(
  async (app) => {
    const verifier = createTokenVerifier(app.config)
    app.decorate('tokenVerifier', verifier)
    if (verifier === null) {
      app.log.warn(
        'no JWT_SECRET or JWT_PUBLIC_KEY configured: open mode, bind trusts the uid it is given and user routes are not authenticated',
      )
    } else {
      app.log.info({ algorithms: verifier.algorithms }, 'JWT auth on: bind and user routes need a token for the uid')
      const secret = app.config.jwtSecret
      if (secret !== undefined && secret.length < JWT_SECRET_MIN) {
        app.log.warn(
          `JWT_SECRET has ${secret.length} characters: an HS256 secret shorter than ${JWT_SECRET_MIN} random characters can be guessed offline from any token`,
        )
      }
    }
  },
  { name: 'auth', dependencies: ['config'] },
)
