// Guards admin routes: `Authorization: Bearer $ADMIN_TOKEN`, compared in constant time.
// Without ADMIN_TOKEN the routes answer loopback clients only, and never a request relayed
// by a proxy: nginx on the same host connects from loopback on behalf of the whole network.
import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { isLoopbackAddress } from '../src/net/loopback.js'
import { AdminLoopbackOnly, AdminTokenRequired } from './http-errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    adminGuard: (request: FastifyRequest) => Promise<void>
    isAdminRequest: (request: FastifyRequest) => boolean
  }
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header === undefined) return undefined
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match?.[1]
}

/** Headers a reverse proxy adds: a request carrying one was relayed, whatever its socket says. */
const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'] as const

/** A client on this machine talking to the server directly, not through a proxy. */
export function isLocalClient(request: FastifyRequest): boolean {
  return isLoopbackAddress(request.socket.remoteAddress ?? '') && FORWARDING_HEADERS.every((name) => request.headers[name] === undefined)
}

export default fp(
  async (app) => {
    const { adminToken } = app.config
    // Hashing both sides gives equal lengths, so timingSafeEqual never leaks the length.
    const expected = adminToken === undefined ? undefined : digest(adminToken)
    if (expected === undefined) {
      app.log.warn('ADMIN_TOKEN is not set: admin routes answer loopback clients only')
    }

    app.decorate('isAdminRequest', (request: FastifyRequest): boolean => {
      if (expected === undefined) return isLocalClient(request)
      const token = bearerToken(request)
      return token !== undefined && timingSafeEqual(digest(token), expected)
    })

    app.decorate('adminGuard', async (request: FastifyRequest): Promise<void> => {
      if (app.isAdminRequest(request)) return
      throw expected === undefined ? new AdminLoopbackOnly() : new AdminTokenRequired()
    })
  },
  { name: 'admin-auth', dependencies: ['config', 'error-handler'] },
)
