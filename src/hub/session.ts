// One live WebSocket connection as the hub sees it: transport-free, so the hub can be
// driven by @fastify/websocket, a test double or a benchmark without change.
import { randomUUID } from 'node:crypto'

/** What the hub needs from a transport. */
export interface Connection {
  send(data: string): void
  close(code: number, reason: string): void
}

export interface SessionInfo {
  id: string
  uid: string
  joined: string | null
  connectedAt: string
  remoteAddress: string
  node: string
}

/** A live delivery held back while the bind replay is being sent, to keep mid order. */
export interface HeldFrame {
  mid: string
  data: string
}

export class Session {
  readonly id = randomUUID()
  readonly connectedAt = Date.now()
  uid: string | null = null
  /** The peer whose conversation this connection has open. */
  joined: string | null = null
  /** Raw frames that arrived while a bind was in flight; null when no bind is. */
  queued: string[] | null = null
  /** Live messages that arrived during the bind replay; null when not replaying. */
  held: HeldFrame[] | null = null
  closed = false

  constructor(
    readonly connection: Connection,
    readonly remoteAddress: string,
  ) {}

  send(data: string): void {
    if (!this.closed) this.connection.send(data)
  }
}
