// One live WebSocket connection as the hub sees it: transport-free, so the hub can be
// driven by @fastify/websocket, a test double or a benchmark without change.
import { randomUUID } from 'node:crypto'
import type { FrameRateLimit } from '../limits/frame-rate-limit.js'

/** What the hub needs from a transport. */
export interface Connection {
  /** False when the connection is no longer open (closing or closed): the frame was dropped. */
  send(data: string): boolean
  close(code: number, reason: string): void
  /** Bytes queued for the peer but not yet written out; absent = the transport never queues. */
  readonly bufferedAmount?: number
}

/** Shared by every session of a hub: the slow-consumer bound and what to do past it. */
export interface SendLimit {
  maxBufferedBytes: number
  /** Called once a send leaves more than maxBufferedBytes queued on the connection. */
  onOverflow(session: Session, buffered: number): void
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

interface ParkedReply {
  data: string
  after: (() => void) | null
}

export class Session {
  readonly id = randomUUID()
  readonly connectedAt = Date.now()
  uid: string | null = null
  /** The peer whose conversation this connection has open. */
  joined: string | null = null
  /** Joins begun on this connection: a failed join rolls back only if it is still the latest. */
  joins = 0
  /** Raw frames that arrived while a bind was in flight; null when no bind is. */
  queued: string[] | null = null
  /** Resolves once the latest send's store write is submitted; null when none is pending. */
  storeTurn: Promise<void> | null = null
  /** Resolves once the latest send's cross-node publish is made; null when none is pending. */
  publishTurn: Promise<void> | null = null
  /** Live messages that arrived during the bind replay; null when not replaying. */
  held: HeldFrame[] | null = null
  closed = false
  /** Bind frames seen on this connection, successful or not. */
  bindAttempts = 0
  /** Reply slots handed out, and the next one to go out: replies leave in frame order. */
  private replySlots = 0
  private nextReply = 0
  /** Replies ready before an earlier one, by slot; null while none waits. */
  private parked: Map<number, ParkedReply> | null = null

  constructor(
    readonly connection: Connection,
    readonly remoteAddress: string,
    private readonly sendLimit: SendLimit | null = null,
    /** Null when frames are not rate limited. */
    readonly rate: FrameRateLimit | null = null,
  ) {}

  /**
   * A slot for the reply of the frame being handled now, taken in frame order: a frame whose
   * reply must wait (a send for the store, a join for its read marks) takes it on arrival.
   */
  reserveReply(): number {
    return this.replySlots++
  }

  /**
   * Sends the reply for `slot` once every earlier slot's reply has gone out, and then runs
   * `after` (what must not reach the client before this reply).
   */
  reply(slot: number, data: string, after: (() => void) | null = null): void {
    if (slot !== this.nextReply) {
      this.parked ??= new Map()
      this.parked.set(slot, { data, after })
      return
    }
    this.send(data)
    this.nextReply++
    after?.()
    for (let next = this.parked?.get(this.nextReply); next !== undefined; next = this.parked?.get(this.nextReply)) {
      this.parked!.delete(this.nextReply++)
      this.send(next.data)
      next.after?.()
    }
    if (this.parked?.size === 0) this.parked = null
  }

  /** False when the frame was dropped: the connection is closing or closed. */
  send(data: string): boolean {
    if (this.closed || !this.connection.send(data)) return false
    // During a bind the replay paces itself (Hub.drained) instead of tripping the bound.
    if (this.sendLimit === null || this.held !== null) return true
    const buffered = this.connection.bufferedAmount ?? 0
    if (buffered > this.sendLimit.maxBufferedBytes) this.sendLimit.onOverflow(this, buffered)
    return true
  }
}
