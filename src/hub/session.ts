// One live WebSocket connection as the hub sees it: transport-free, so the hub can be
// driven by @fastify/websocket, a test double or a benchmark without change.
import { randomUUID } from 'node:crypto'
import type { FrameRateLimit } from '../limits/frame-rate-limit.js'
import type { StoredMessage } from '../protocol/message.js'

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
  /** Its recipient is another uid for a carbon. */
  message: StoredMessage
  data: string
}

interface ParkedReply {
  /** Null: the frame's slot is passed without a reply (a typing frame that succeeded). */
  data: string | null
  /** Frames that must not reach the client before this reply (a message to yourself). */
  then: string[] | null
}

/** A frame that came in while a bind was in flight, with the reply slot it took on arrival. */
export interface QueuedFrame {
  data: string
  slot: number
}

export class Session {
  readonly id = randomUUID()
  readonly connectedAt = Date.now()
  uid: string | null = null
  /** The peer whose conversation this connection has open. */
  joined: string | null = null
  /** Joins begun on this connection: a failed join rolls back only if it is still the latest. */
  joins = 0
  /** Raw frames that arrived while a bind was in flight; null when no bind is (queue, takeQueued). */
  queued: QueuedFrame[] | null = null
  /** Resolves once the latest send's store write is submitted; null when none is pending (send-order.ts). */
  storeTurn: Promise<void> | null = null
  /** Resolves once the latest send's cross-node publish is made; null when none is pending (send-order.ts). */
  publishTurn: Promise<void> | null = null
  /** Live messages that arrived during the bind replay; null when not replaying (hold, takeHeld). */
  held: HeldFrame[] | null = null
  closed = false
  /** Bind frames seen on this connection, successful or not. */
  bindAttempts = 0
  /** Error replies sent on this connection (replies.ts logs the first few at info). */
  errorReplies = 0
  /** The signals this connection asked for at bind (features.ts); 0 = none, as every seed client. */
  features = 0
  /** True once its 201 is out: signal frames never reach a client before it. */
  signalsOn = false
  /** The uids whose presence this connection watches (watchers.ts); null until the first watch. */
  watching: Set<string> | null = null
  /** Reply slots handed out, and the next one to go out: replies leave in frame order. */
  private replySlots = 0
  private nextReply = 0
  /** Replies ready before an earlier one, by slot; null while none waits. */
  private parked: Map<number, ParkedReply> | null = null
  /**
   * Characters this client makes the server keep besides its socket's buffer: replies parked
   * for frame order, frames queued behind a bind, live messages held during its replay. They
   * count against the slow-consumer bound like unsent ones.
   */
  private retainedChars = 0

  constructor(
    readonly connection: Connection,
    readonly remoteAddress: string,
    private readonly sendLimit: SendLimit | null = null,
    /** Null when frames are not rate limited. */
    readonly rate: FrameRateLimit | null = null,
  ) {}

  /** A slot for the reply to a frame, taken when the frame arrives: replies leave in slot order. */
  reserveReply(): number {
    return this.replySlots++
  }

  /** Sends the reply for `slot` once every earlier slot's reply has gone out; null = no reply, only the turn passes. */
  reply(slot: number, data: string | null): void {
    if (this.closed) {
      this.parked = null // nothing will be sent any more
      return
    }
    if (slot !== this.nextReply) {
      this.park(slot, data)
      return
    }
    if (data !== null) this.send(data)
    this.nextReply++
    for (let next = this.parked?.get(this.nextReply); next !== undefined; next = this.parked?.get(this.nextReply)) {
      this.parked!.delete(this.nextReply++)
      if (next.data !== null) {
        this.retainedChars -= next.data.length
        this.send(next.data)
      }
      if (next.then === null) continue
      for (const data of next.then) {
        this.retainedChars -= data.length
        this.send(data)
      }
    }
    if (this.parked?.size === 0) this.parked = null
  }

  /** True once the reply for `slot` is sent or parked. */
  hasReplied(slot: number): boolean {
    return slot < this.nextReply || this.parked?.has(slot) === true
  }

  /**
   * Sends a frame that is not a reply, but must not arrive before the reply of `slot` (already
   * given to `reply`): now if that reply has gone out, else right after it. True when sent now.
   */
  sendAfterReply(slot: number, data: string): boolean {
    const parked = slot < this.nextReply ? undefined : this.parked?.get(slot)
    if (parked === undefined) return this.send(data)
    parked.then ??= []
    parked.then.push(data)
    this.retain(data)
    return false
  }

  private park(slot: number, data: string | null): void {
    this.parked ??= new Map()
    this.parked.set(slot, { data, then: null })
    if (data !== null) this.retain(data)
  }

  /** Starts a bind: later frames queue behind it, live messages are held for its replay. */
  beginBind(): void {
    this.queued = []
    this.held = []
  }

  /** Starts a catch-up replay on a bound connection: live messages are held for after it. */
  beginHold(): void {
    this.held ??= []
  }

  /** A frame that arrived while a bind is in flight, processed once it is answered. */
  queue(data: string, slot: number): void {
    this.queued!.push({ data, slot })
    this.retain(data)
  }

  /** Ends the queueing: the frames to process now, in arrival order. */
  takeQueued(): QueuedFrame[] {
    const queued = this.queued ?? []
    this.queued = null
    for (const frame of queued) this.retainedChars -= frame.data.length
    return queued
  }

  /** A live message for this connection while its replay is under way: sent after it. */
  hold(message: StoredMessage, data: string): void {
    this.held!.push({ message, data })
    this.retain(data)
  }

  /** Ends the replay: the live messages held meanwhile, in arrival order. */
  takeHeld(): HeldFrame[] {
    const held = this.held ?? []
    this.held = null
    for (const frame of held) this.retainedChars -= frame.data.length
    return held
  }

  /**
   * What this client makes the server keep besides the socket is bounded together with its
   * unsent frames. During a bind's replay the replay paces the socket itself (BacklogSender),
   * so only what is retained counts then.
   */
  private retain(data: string): void {
    this.retainedChars += data.length
    this.checkBound()
  }

  private checkBound(): void {
    if (this.sendLimit === null || this.closed) return
    const kept = this.retainedChars + (this.held === null ? (this.connection.bufferedAmount ?? 0) : 0)
    if (kept > this.sendLimit.maxBufferedBytes) this.sendLimit.onOverflow(this, kept)
  }

  /** False when the frame was dropped: the connection is closing or closed. */
  send(data: string): boolean {
    if (this.closed || !this.connection.send(data)) return false
    this.checkBound()
    return true
  }
}
