// /ws: adapts each WebSocket to a hub Session. Parsing and semantics live in the hub.
// Upgrades are admitted here, before they happen: a foreign browser Origin gets 403,
// too many connections 503 (in total) or 429 (from one address, counting its connections
// that have not sent their request yet: plugins/connection-admission.ts).
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { OriginNotAllowed, TooManyConnections, TooManyConnectionsFromAddress } from '../plugins/http-errors.js'
import type { Session } from '../src/hub/session.js'
import { Code } from '../src/protocol/codes.js'
import { FairReads, ReadTurn } from '../src/limits/fair-reads.js'
import { BatchedConnection, BatchedWrites } from '../src/transport/batched-writes.js'
import { FlushingWebSocket } from '../src/transport/flushing-websocket.js'
import fp from 'fastify-plugin'

/** Frames one connection may deliver per event-loop turn before it waits for the next. */
const FRAMES_PER_TURN = 64

const normalizeOrigin = (origin: string): string => origin.trim().toLowerCase().replace(/\/+$/, '')

const wsRoute: FastifyPluginAsync = async (app) => {
  const { hub, config, connectionAdmission: admission } = app
  // A text frame as a string, a binary frame as null (refused without reading it).
  const fairReads = new FairReads<string | null>(FRAMES_PER_TURN)
  const batchedWrites = new BatchedWrites()
  // The HTTP response of each upgrade in progress, to detach from the socket once upgraded.
  const upgrading = new WeakMap<IncomingMessage, ServerResponse>()
  const allowedOrigins = config.allowedOrigins === undefined ? null : new Set(config.allowedOrigins.map(normalizeOrigin))

  const admit = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!request.ws) return // a plain GET /ws: the route answers 404
    // Browsers always send Origin on a WebSocket upgrade; other clients may omit it
    // (and could forge it anyway), so the check stops cross-site pages, not programs.
    const origin = request.headers.origin
    if (allowedOrigins !== null && origin !== undefined && !allowedOrigins.has(normalizeOrigin(origin))) {
      request.log.info({ origin }, 'upgrade refused: origin not allowed')
      throw new OriginNotAllowed()
    }
    const ip = request.ip
    const verdict = admission.admit(ip)
    if (verdict !== 'ok') {
      const total = verdict === 'total'
      request.log.warn({ ip, open: admission.open }, total ? 'upgrade refused: MAX_CONNECTIONS' : 'upgrade refused: MAX_CONNECTIONS_PER_IP')
      throw total ? new TooManyConnections() : new TooManyConnectionsFromAddress()
    }
    // The TCP socket closes exactly once, upgraded or not: release there.
    const socket = request.raw.socket as typeof request.raw.socket | undefined
    if (socket === undefined) admission.release(ip)
    else socket.once('close', () => admission.release(ip))
    upgrading.set(request.raw, reply.raw)
  }

  app.get('/ws', { websocket: true, onRequest: admit, schema: { hide: true } }, (socket, request) => {
    const ip = request.ip
    // plugins/websocket.ts has ws build these; without the close hook, frames batched in the turn
    // of a peer's close frame would be dropped after the hub counted them as sent.
    if (!(socket instanceof FlushingWebSocket)) throw new Error('the websocket plugin must build FlushingWebSockets')
    // The upgraded WebSocket writes to the request's own TCP socket: frames are batched onto it.
    const session = hub.open(new BatchedConnection(socket, request.raw.socket, batchedWrites), ip)
    request.log.info({ session: session.id, remoteAddress: ip }, 'connection open')
    // @fastify/websocket leaves the upgrade's HTTP response assigned to the socket, and its error
    // listener closes over the request and reply: either would keep the request's objects
    // (about 2 KB) for the connection's whole life. The socket is the WebSocket's now.
    upgrading.get(request.raw)?.detachSocket(request.raw.socket)
    upgrading.delete(request.raw)
    socket.removeAllListeners('error')
    serve(socket, session)
  })

  // Nothing here holds the upgrade request: a connection lives for hours, its request's objects
  // (and a child logger per connection) would too. Logs name the session instead.
  const serve = (socket: WebSocket, session: Session): void => {
    const turn = new ReadTurn<string | null>(socket, (text) => {
      if (text === null) hub.refuse(session, Code.BAD_FRAME, 'binary frames are not supported: send JSON text')
      else hub.handle(session, text)
    })
    socket.on('message', (data, isBinary) => fairReads.receive(turn, isBinary ? null : data.toString()))
    socket.on('close', (code) => {
      fairReads.flush(turn)
      const errors = session.errorReplies > 0 ? { errorReplies: session.errorReplies } : {}
      app.log.info({ session: session.id, uid: session.uid, code, ...errors }, 'connection closed')
      hub.close(session)
    })
    // ws has begun closing the connection (with the close code the error calls for) already.
    socket.on('error', (err) => app.log.warn({ err, session: session.id, uid: session.uid }, 'connection error'))
  }
}

// Encapsulated like any route plugin; named, so a missing plugin it needs fails at start.
export default fp(wsRoute, { name: 'routes/ws', dependencies: ['config', 'hub', 'websocket', 'error-handler'], encapsulate: true })
