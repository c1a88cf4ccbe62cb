// Follows each TCP connection of an HTTP server until it has sent its first request: its head
// (a plain request or an upgrade) and, for a plain request with a body, the body too. Until
// then it counts against its address's MAX_CONNECTIONS_PER_IP (ConnectionAdmission), and it
// gets HEADERS_TIMEOUT_MS to send it before it is closed with 408: a half-sent upgrade never
// reaches Fastify, so nothing else would see it. Node's own timeouts are checked only every
// 30 s (connectionsCheckingInterval); a timer per socket, cleared on its request, is exact.
// A connection kept alive after its answer counts again while it waits for its next request
// (no timer: keepAliveTimeout ends it), so idle connections cannot hold one address's file
// descriptors past the limit either. Later requests on it are timed by Node (requestTimeout).
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { ConnectionAdmission } from './connection-admission.js'

const REQUEST_TIMEOUT = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'

export interface PendingConnectionsOptions {
  /** null: connections are not counted per address (behind a trusted proxy they are all the proxy's). */
  admission: ConnectionAdmission | null
  headersTimeoutMs: number
  /** A connection refused at once: its address holds too many already. */
  onRefused: (ip: string) => void
  /** A connection closed because its request head did not come in time. */
  onTimedOut: (ip: string) => void
}

export class PendingConnections {
  // The settle function of each connection still waiting for its request head.
  private readonly pending = new WeakMap<Socket, () => void>()
  // Per address, its kept-alive connections waiting for their next request (idle()).
  private readonly idleByIp = new Map<string, Set<Socket>>()

  constructor(
    private readonly server: Server,
    private readonly options: PendingConnectionsOptions,
  ) {
    server.on('connection', this.onConnection)
    // Before Fastify's listener, which may answer at once (a bad URL, a server closing).
    server.prependListener('request', this.onRequest)
  }

  /**
   * An upgrade's head came in on `socket`: the app calls this from an onRequest hook. Not from
   * the server's 'upgrade' event, whose mere listener would make Node hand over upgrades that
   * no one answers once the WebSocket plugin has stopped listening (at shutdown).
   */
  headReceived(socket: Socket): void {
    this.pending.get(socket)?.()
  }

  stop(): void {
    this.server.off('connection', this.onConnection)
    this.server.off('request', this.onRequest)
  }

  private readonly onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    const { socket } = request
    const hasBody = request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined
    if (!hasBody) this.headReceived(socket)
    else {
      // Pending (counted, timed) until the body is in, or answered without it (a 404, a 413).
      const received = (): void => this.headReceived(socket)
      request.once('end', received)
      response.once('finish', received)
    }
    response.once('finish', () => this.idle(socket))
  }

  /** Answered, the connection stays open for the next request: it counts again until that comes. */
  private idle(socket: Socket): void {
    const { admission } = this.options
    if (admission === null || socket.destroyed || this.pending.has(socket)) return
    const ip = socket.remoteAddress ?? ''
    // At the limit, an idle connection is the one to give up: the client opens another when it needs one.
    if (!admission.openPending(ip)) {
      socket.destroy()
      return
    }
    let idle = this.idleByIp.get(ip)
    if (idle === undefined) this.idleByIp.set(ip, (idle = new Set()))
    idle.add(socket)
    const settle = (): void => {
      this.pending.delete(socket)
      socket.off('close', settle)
      idle.delete(socket)
      if (idle.size === 0 && this.idleByIp.get(ip) === idle) this.idleByIp.delete(ip)
      admission.settlePending(ip)
    }
    this.pending.set(socket, settle)
    socket.on('close', settle)
  }

  /** Makes room for a new connection from `ip` by closing one of its idle kept-alive ones, if it has one. */
  private closeIdle(ip: string): boolean {
    const socket = this.idleByIp.get(ip)?.values().next().value
    if (socket === undefined) return false
    this.pending.get(socket)?.()
    socket.destroy()
    return true
  }

  private readonly onConnection = (socket: Socket): void => {
    const { admission, headersTimeoutMs, onRefused, onTimedOut } = this.options
    const ip = socket.remoteAddress ?? ''
    // Many clients behind one address (a school's NAT) keep connections alive between requests:
    // those give way to a new connection before it is refused.
    if (admission !== null && !admission.openPending(ip) && !(this.closeIdle(ip) && admission.openPending(ip))) {
      onRefused(ip)
      socket.destroy()
      return
    }
    const timer = setTimeout(() => {
      onTimedOut(ip)
      // Written before destroy: a small write goes to the kernel at once, and the client learns why.
      if (socket.writable) socket.write(REQUEST_TIMEOUT)
      socket.destroy()
    }, headersTimeoutMs)
    timer.unref()
    const settle = (): void => {
      clearTimeout(timer)
      this.pending.delete(socket)
      socket.off('close', settle)
      admission?.settlePending(ip)
    }
    this.pending.set(socket, settle)
    socket.on('close', settle)
  }
}
