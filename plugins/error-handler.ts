// The one error handler: whatever a guard, a route or Fastify itself throws, and a request for
// a route that does not exist, answers with the documented body (ErrorResponse) and the
// headers its declaration in plugins/http-errors.ts names.
import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ErrorResponse } from '../src/protocol/rest.js'
import { declaredError, RouteNotFound } from './http-errors.js'

interface ThrownError extends Error {
  code?: unknown
  statusCode?: unknown
  /** Response headers Fastify's convention lets an error carry. */
  headers?: Record<string, string>
}

/** The error's own 4xx/5xx status, else 500, as Fastify's default handler decides it. */
function statusOf(error: ThrownError): number {
  const status = error.statusCode
  return typeof status === 'number' && status >= 400 && status <= 599 ? status : 500
}

function handle(error: ThrownError, request: FastifyRequest, reply: FastifyReply): void {
  const statusCode = statusOf(error)
  const declared = declaredError(error.code)
  // The catalog says how to log what it declares; anything else is logged as Fastify would.
  const level = declared === undefined ? (statusCode >= 500 ? 'error' : 'info') : declared.log
  if (level === 'error') reply.log.error({ req: request, res: reply, err: error }, error.message)
  else if (level === 'info') reply.log.info({ res: reply, err: error }, error.message)
  // Codes are part of the contract only when duet or Fastify raised the error on purpose: a
  // driver's code on an internal failure (ECONNREFUSED, 57P01) says nothing a client can use.
  const code = typeof error.code === 'string' && (declared !== undefined || error.code.startsWith('FST_')) ? error.code : undefined
  reply
    .code(statusCode)
    .headers({ ...error.headers, ...declared?.headers })
    .send({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message: error.message, ...(code === undefined ? {} : { code }) })
}

export default fp(
  async (app) => {
    // Routes' error responses refer to it ($ref), so OpenAPI has it once, as a component.
    app.addSchema(ErrorResponse)
    app.setErrorHandler<ThrownError>(handle)
    app.setNotFoundHandler(async (request) => {
      request.log.info(`Route ${request.method}:${request.url} not found`)
      throw new RouteNotFound(request.method, request.url)
    })
  },
  { name: 'error-handler', dependencies: [] },
)
