// The message pipeline: the one path a chat message takes. Lookup (where its recipient is
// bound, and whether the conversation is open) → append (stored, numbered) → ack (204) →
// route (pushed to the recipient's connections here, handed to the other nodes it is bound on,
// its delivered flag set to what happened, so the next bind pushes exactly what was missed).
// A sender's messages keep their order through every step that can answer late (send-order.ts).
// Pushes that other nodes ask this one to make come in here too (fromNode), and sends that
// come from no connection (sendFrom: the admin's POST /admin/messages).
import { performance } from 'node:perf_hooks'
import type { Broker, ClusterEvent } from '../cluster/broker.js'
import type { Presence } from '../cluster/presence.js'
import type { Logger } from '../logger.js'
import { Code } from '../protocol/codes.js'
import { encodeFrame, messageFrame, replyFrame } from '../protocol/frames.js'
import type { StoredMessage } from '../protocol/message.js'
import type { SendFrame } from '../protocol/schemas.js'
import type { AppendResult, MessageStore } from '../store/message-store.js'
import type { DeliveryMarks } from './delivery-marks.js'
import type { FanOut } from './fan-out.js'
import { Feature } from './features.js'
import type { HubMetrics } from './hub-metrics.js'
import type { LocalSessions } from './local-sessions.js'
import type { Receipts } from './receipts.js'
import type { Replies } from './replies.js'
import type { LostPushes } from './lost-pushes.js'
import type { OfflineEvents } from './offline-events.js'
import type { Session } from './session.js'
import { publishNow, publishTurn, storeNow, storeTurn, type Sessions, type StoreTurn } from './send-order.js'

const NO_SESSIONS: Sessions = Object.freeze([])

export interface PipelineOptions {
  store: MessageStore
  presence: Presence
  broker: Broker
  logger: Logger
  nodeId: string
  metrics?: HubMetrics | undefined
  /** This node's bound sessions (the registry's). */
  local: LocalSessions
  /** Delivered-flag writes in flight, which a bind's replay waits for. */
  marks: DeliveryMarks
  replies: Replies
  /** Told of every message that reached a live connection, or was read on arrival. */
  receipts: Receipts
  /** MULTI_DEVICE: a sender's other connections that asked for `carbons` get a copy of what it sends. */
  multiDevice: boolean
  fanOut: FanOut
  /** WEBHOOK_URL: messages for recipients with no live connection get an outbox event. */
  offlineEvents?: OfflineEvents | undefined
  lostPushes?: LostPushes // failed pushes to other nodes, for a catch-up there later
}

/** What a send that no connection made gets back (sendFrom). */
export interface SendOutcome {
  mid: string
  ts: number
  /** True when (from, to, ref) was stored already: nothing new was stored or pushed. */
  duplicate: boolean
}

/** The connection a send came from, and the reply slot its ack takes. */
interface Origin {
  session: Session
  slot: number
}

export class MessagePipeline {
  constructor(private readonly options: PipelineOptions) {}

  /** A `send` from a bound connection, validated: stored, acked in its reply slot, routed. */
  async send(session: Session, slot: number, from: string, frame: SendFrame): Promise<void> {
    const to = frame.touid
    let result: AppendResult
    let delivered: boolean
    let entries: Sessions
    let turn: StoreTurn | null = null
    try {
      // The common case goes straight to the store, in this turn of the event loop.
      const lookup = this.lookup(to)
      if (storeNow(session, lookup)) entries = lookup
      else {
        turn = storeTurn(session, lookup)
        entries = await turn.entries
      }
      const state = this.recipientState(to, from, entries)
      delivered = state.delivered
      const appended = this.append(from, frame, state)
      turn?.submitted()
      result = await appended
    } catch (err) {
      turn?.submitted() // a store that threw at once must not hold this connection's next sends
      this.options.logger.error({ err, session: session.id, uid: from }, 'store append failed')
      this.options.replies.send(session, slot, Code.INTERNAL, 'send', 'internal error: message not stored, send again', { ref: frame.ref })
      return
    }
    const stored = result.message
    const ack = replyFrame(Code.SENT, 'send', '', { uid: from, touid: to, ref: frame.ref })
    ack.mid = stored.mid
    ack.ts = stored.ts
    this.options.replies.sendFrame(session, slot, ack)
    if (result.duplicate) return
    if (this.options.multiDevice && from !== to) this.carbon(session, stored)
    const routing = this.route({ session, slot }, to, stored, entries, delivered)
    if (routing !== undefined) await routing
  }

  /**
   * A `send` that no connection made (POST /admin/messages), validated as a frame is: the
   * same lookup → append → route, outside every connection's order (two requests are not
   * ordered; a connection's sends keep theirs). Resolves once stored and routed; rejects when
   * the message was not stored.
   */
  async sendFrom(from: string, frame: SendFrame): Promise<SendOutcome> {
    const to = frame.touid
    const entries = await this.lookup(to)
    const state = this.recipientState(to, from, entries)
    const { message, duplicate } = await this.append(from, frame, state)
    if (duplicate) return { mid: message.mid, ts: message.ts, duplicate }
    // Sent on the user's behalf: every device of theirs that asked for carbons sees it.
    if (this.options.multiDevice && from !== to) this.carbon(null, message)
    await this.route(null, to, message, entries, state.delivered)
    return { mid: message.mid, ts: message.ts, duplicate }
  }

  /** Stores a send, timed; `state` is what the lookup said of its recipient. */
  private async append(from: string, frame: SendFrame, state: { read: boolean; delivered: boolean }): Promise<AppendResult> {
    const { store, metrics } = this.options
    const started = performance.now()
    // An empty ref is echoed but names no message: it cannot make a resend of anything.
    const ref = frame.ref === '' ? undefined : frame.ref
    try {
      const offlineEvent = this.options.offlineEvents !== undefined && !state.delivered
      const result = await store.append({ from, to: frame.touid, msg: frame.msg, ref, read: state.read, delivered: state.delivered, offlineEvent })
      metrics?.storeWrite((performance.now() - started) / 1000, true)
      if (offlineEvent && !result.duplicate) this.options.offlineEvents!.stored()
      return result
    } catch (err) {
      metrics?.storeWrite((performance.now() - started) / 1000, false)
      throw err
    }
  }

  /**
   * The uid's sessions per presence, every node's. Synchronous when the engine holds presence
   * in process (one node): a send then awaits only its store write. Without presence (an
   * outage) the message is still stored, and reaches the other nodes' users by recovery.
   */
  private lookup(uid: string): Sessions | Promise<Sessions> {
    const sessions = this.presenceOf(uid)
    if (!(sessions instanceof Promise)) return sessions
    return sessions.catch((err: unknown) => {
      this.options.logger.warn({ err, uid }, 'presence unavailable: delivering locally only')
      return NO_SESSIONS
    })
  }

  private presenceOf(uid: string): Sessions | Promise<Sessions> {
    const { presence } = this.options
    return presence.peekSessionsOf !== undefined ? presence.peekSessionsOf(uid) : presence.sessionsOf(uid)
  }

  /**
   * Whether `to` is online anywhere (delivered) and has the conversation with `from` open
   * (read). Local sessions come from this node's own state, which is never behind; presence
   * adds the other nodes'.
   */
  private recipientState(to: string, from: string, entries: Sessions): { read: boolean; delivered: boolean } {
    let delivered = false
    let read = false
    for (const session of this.options.local.of(to) ?? NO_LOCAL) {
      delivered = true
      if (session.joined === from) read = true
    }
    for (const entry of entries) {
      if (entry.node === this.options.nodeId) continue
      delivered = true
      if (entry.joined === from) read = true
    }
    return { read, delivered }
  }

  /**
   * Pushes a stored message to its recipient here, and asks the other nodes it is on to.
   * A push no other node heard is marked undelivered again, so the recipient's node sends it
   * when its subscription is back (resync) or at the recipient's next bind. `storedDelivered`
   * is what the append recorded from presence before the write; the recipient may have bound
   * or gone during it, and the flag is then set to what happened, so that the next bind does
   * not miss the message (and seldom pushes it twice). A node asked to push sets the flag to
   * what happened there itself (fromNode).
   */
  private route(origin: Origin | null, to: string, message: StoredMessage, before: Sessions, storedDelivered: boolean): Promise<void> | undefined {
    const pushedHere = this.push(to, message, origin)
    // Sessions on other nodes seen before the write are still the places to push to; only
    // when there were none, look again: the recipient may have bound during the write.
    const entries = before.some((entry) => entry.node !== this.options.nodeId) ? before : this.presenceOf(to)
    const publish = (list: Sessions | null): void => {
      const published = list !== null && this.publishElsewhere(to, message, list, storedDelivered)
      this.settle(to, message, storedDelivered, pushedHere, published)
    }
    // No connection, no order to keep: publish once the lookup answers.
    if (origin === null) return Promise.resolve(entries).then(publish, () => publish(null))
    if (publishNow(origin.session, entries)) {
      publish(entries)
      return undefined
    }
    // A second lookup can answer after the next message's publish: it waits its turn, so
    // another node gets a sender's messages in order.
    return publishTurn(origin.session, entries, publish)
  }

  /**
   * Sets the store's delivered flag to what happened, when that differs from what the append
   * recorded. A push handed to another node is that node's to settle: it is told the flag the
   * message was stored with, and corrects it to what happened there (a node of an older
   * version only sets it back to undelivered; a push it made stays undelivered: a duplicate
   * at the next bind, not a loss).
   */
  private settle(to: string, message: StoredMessage, stored: boolean, pushedHere: boolean, published: boolean): void {
    const pushed = pushedHere || (published && stored)
    if (pushed !== stored) this.setDelivered(to, message.mid, pushed)
    // Stored as undelivered, the message has its event already (append).
    if (stored && !pushedHere && !published) this.missed(to, message)
  }

  /**
   * A message stored as going to a live connection reached none: its webhook event is written
   * now. A connection still replaying its bind is live (it gets the message from the replay);
   * any other that refused the push is closing.
   */
  private missed(to: string, message: StoredMessage): void {
    if (this.options.local.of(to)?.some((session) => session.held !== null) === true) return
    this.options.offlineEvents?.missed(message)
  }

  /**
   * A bind's replay was cut off (its connection closed, or the server is stopping) with these
   * live messages to `uid` held for after it: they were flagged not pushed when held, and get
   * their webhook event now, as a message to an offline recipient does (missed() let them be
   * while the replay might still carry them).
   */
  heldAndCutOff(session: Session, uid: string, held: ReadonlyArray<{ message: StoredMessage }>): void {
    // Another connection of uid got them as they came (MULTI_DEVICE), or its replay (a newer
    // bind that replaced this one) carries them: nothing was missed.
    if (this.options.local.of(uid)?.some((other) => other !== session && !other.closed) === true) return
    for (const { message } of held) this.options.offlineEvents?.missed(message)
  }

  setDelivered(to: string, mid: string, delivered: boolean): void {
    const write = this.options.store.setDelivered(to, mid, delivered)
    this.options.marks.track(to, write)
    write.catch((err: unknown) => this.options.logger.error({ err, uid: to, mid }, 'setDelivered failed'))
  }

  /**
   * Asks every other node the recipient is on to push the message; true when there was one.
   * `forwardedFrom` is the origin of a message this node forwards (fromNode): the origin has
   * pushed it to the recipient's connections there itself.
   */
  private publishElsewhere(to: string, message: StoredMessage, entries: Sessions, storedDelivered: boolean, forwardedFrom?: string): boolean {
    const { nodeId } = this.options
    let nodes: Set<string> | undefined
    for (const entry of entries) if (entry.node !== nodeId && entry.node !== forwardedFrom) (nodes ??= new Set()).add(entry.node)
    if (nodes === undefined) return false
    const event: ClusterEvent =
      forwardedFrom === undefined
        ? { kind: 'deliver', to, message, storedDelivered, origin: nodeId }
        : { kind: 'deliver', to, message, storedDelivered, origin: forwardedFrom, forwarded: true }
    for (const node of nodes) {
      this.options.broker.publish(node, event).then(
        (heard) => {
          if (!heard) this.undeliver(to, message, node, undefined)
        },
        (err: unknown) => this.undeliver(to, message, node, err),
      )
    }
    return true
  }

  private undeliver(to: string, message: StoredMessage, node: string, err: unknown): void {
    this.options.logger.warn({ err, node, to, mid: message.mid }, 'cross-node push lost: kept for recovery')
    this.setDelivered(to, message.mid, false)
    this.missed(to, message)
    if (err !== undefined) this.options.lostPushes?.note(node, to) // a catch-up there, once the broker answers
  }

  /**
   * Pushes a stored message to every live connection of its recipient on this node. True when
   * one got it now; a connection still replaying its bind only holds it, and that replay may
   * yet be cut off, so it does not count (a duplicate at a later bind beats a loss), and one
   * whose peer has sent its close frame refuses it. A message to yourself waits on the sending
   * connection for its own 204 (`origin.slot`), which may wait for an earlier reply; held, it
   * does not count either.
   */
  private push(uid: string, message: StoredMessage, origin: Origin | null = null): boolean {
    const targets = this.options.local.of(uid)
    if (targets === undefined) return false
    const data = encodeFrame(messageFrame(message, false))
    let pushed = 0
    for (const target of targets) {
      if (target.held !== null) target.hold(message, data)
      else if (target === origin?.session ? target.sendAfterReply(origin.slot, data) : target.send(data)) pushed++
    }
    if (pushed === 0) return false
    this.options.metrics?.frameOut('send', Code.MESSAGE, pushed)
    this.options.metrics?.delivered((Date.now() - message.ts) / 1000)
    this.options.receipts.delivered(message.from, uid, message.mid)
    if (message.read) this.options.receipts.read(message.from, uid, message.mid)
    return true
  }

  /**
   * Another node asks this one to push a message it stored. The flag follows what happened
   * here: the recipient left this node (or is still replaying a bind) since the sender looked,
   * and the next bind must push the message; or the recipient bound here during the write, and
   * the next bind must not.
   */
  fromNode(event: Extract<ClusterEvent, { kind: 'deliver' }>): void {
    const { to, message, storedDelivered = true, origin, forwarded = false } = event
    const pushed = this.push(to, message)
    // Stored as going to a connection here that is gone: the recipient may have bound on a
    // third node during the write, after the sender's node looked. Once, that node is asked.
    if (!pushed && storedDelivered && !forwarded) {
      // An older node's event names no origin: only this node is left out.
      this.forward(to, message, origin ?? this.options.nodeId)
      return
    }
    if (pushed !== storedDelivered) this.setDelivered(to, message.mid, pushed)
    // The sender's node wrote no event (presence showed the recipient here); they have left.
    if (!pushed && storedDelivered) this.missed(to, message)
    if (pushed && !message.read) this.readOnArrival(to, message.from, message.mid)
  }

  /**
   * Sends a message on to the other nodes presence now places its recipient on, still marked
   * delivered: the node that pushes it leaves the flag, one that cannot sets it back (as does
   * this one when no other node has the recipient, or none heard), and the message waits for
   * the next bind. It may reach the recipient after a later message of the same sender, which
   * went to the new node directly.
   */
  private forward(to: string, message: StoredMessage, origin: string): void {
    const notDelivered = (): void => {
      this.setDelivered(to, message.mid, false)
      this.missed(to, message)
    }
    Promise.resolve(this.presenceOf(to)).then(
      (entries) => {
        if (!this.publishElsewhere(to, message, entries, true, origin)) notDelivered()
      },
      (err: unknown) => {
        this.options.logger.warn({ err, to, mid: message.mid }, 'presence unavailable: message kept for the next bind')
        notDelivered()
      },
    )
  }

  /**
   * Carbons: the sender's other connections that asked for them get the message as its
   * recipient does (a 200 with `uid` = the sender, `touid` = the peer, the same mid), here at
   * once and on the other nodes presence places them on.
   */
  private carbon(origin: Session | null, message: StoredMessage): void {
    const { fanOut, metrics } = this.options
    const sent = fanOut.toLocal(message.from, Feature.carbons, () => encodeFrame(messageFrame(message, false)), origin, message)
    if (sent > 0) metrics?.frameOut('send', Code.MESSAGE, sent)
    fanOut.toOtherNodes(message.from, Feature.carbons, { kind: 'carbon', message })
  }

  /** Another node asks this one to copy a message its sender sent there to the sender's connections here. */
  carbonFromNode(event: Extract<ClusterEvent, { kind: 'carbon' }>): void {
    const { message } = event
    const sent = this.options.fanOut.toLocal(message.from, Feature.carbons, () => encodeFrame(messageFrame(message, false)), null, message)
    if (sent > 0) this.options.metrics?.frameOut('send', Code.MESSAGE, sent)
  }

  /**
   * The sender's node stored the message unread from presence it read before the write; a
   * join here since then has the conversation open, and there it is read on arrival.
   */
  private readOnArrival(uid: string, peer: string, mid: string): void {
    const open = this.options.local.of(uid)
    if (open === undefined || !open.some((session) => session.joined === peer)) return
    this.options.store.markRead(uid, peer).then(
      () => this.options.receipts.read(peer, uid, mid),
      (err: unknown) => this.options.logger.error({ err, uid, peer }, 'markRead on arrival failed'),
    )
  }
}

const NO_LOCAL: readonly Session[] = Object.freeze([])
