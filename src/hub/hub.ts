// The hub: this node's connections, their open conversations, and the four client events.
// It knows the MessageStore, Presence and Broker contracts only, never an implementation:
// the same code runs one node in process or many on Redis. Where a stored message goes from
// there (this node's connections, other nodes, its delivered flag) is delivery.ts.
import { performance } from 'node:perf_hooks'
import { AuthError, type TokenVerifier } from '../auth/token-verifier.js'
import type { Broker, ClusterEvent } from '../cluster/broker.js'
import type { Presence, PresenceEntry } from '../cluster/presence.js'
import { FrameRateLimit } from '../limits/frame-rate-limit.js'
import type { Logger } from '../logger.js'
import { Close, Code } from '../protocol/codes.js'
import { encodeFrame, replyFrame } from '../protocol/frames.js'
import { charLength, parseFrame } from '../protocol/parse.js'
import type { BindFrame, ExitFrame, JoinFrame, SendFrame } from '../protocol/schemas.js'
import type { StoredMessage } from '../protocol/message.js'
import type { MessageStore } from '../store/message-store.js'
import { BacklogSender } from './backlog.js'
import { Delivery, type Sessions } from './delivery.js'
import { DeliveryMarks } from './delivery-marks.js'
import type { HubMetrics } from './hub-metrics.js'
import { LocalSessions } from './local-sessions.js'
import { Session, type Connection, type SendLimit, type SessionInfo } from './session.js'

export interface HubOptions {
  store: MessageStore
  presence: Presence
  broker: Broker
  logger: Logger
  nodeId: string
  multiDevice: boolean
  maxMessageLength: number
  /** Checks the bind token; absent or null = open mode, bind trusts `uid`. */
  verifier?: TokenVerifier | null
  /** Frames per second per connection; 0 or absent = unlimited. */
  rateLimit?: number
  /** Token bucket size; default 2 × rateLimit. */
  rateBurst?: number
  /** Bind frames allowed per connection before it is closed with 1008; absent = unlimited. */
  maxBindAttempts?: number
  /** A connection with more unsent bytes than this is closed with 1013; absent = unbounded. */
  slowConsumerBytes?: number
  /** Traffic counters and latencies (plugins/metrics.ts); absent = not measured. */
  metrics?: HubMetrics
}

const AUTH_MESSAGES: Record<AuthError['reason'], string> = {
  missing: 'token required',
  invalid: 'invalid token',
  expired: 'token expired',
  'not-yet-valid': 'token not valid yet (nbf)',
  'wrong-issuer': 'wrong token issuer',
  'wrong-audience': 'wrong token audience',
  'wrong-subject': 'token is for another uid',
}

type ReplyFields = { uid?: string; touid?: string; ref?: string | undefined }

const NO_SESSIONS: Sessions = Object.freeze([])

export class Hub {
  private readonly local = new LocalSessions()
  private readonly sessions = new Map<string, Session>()
  /** Tracked work not yet settled, and who waits for it to reach zero (shutdown). */
  private inFlight = 0
  private readonly idleWaiters: Array<() => void> = []
  private closing = false
  private readonly sendLimit: SendLimit | null
  private readonly rateBurst: number
  private readonly maxBindAttempts: number
  private readonly backlog: BacklogSender
  private readonly marks = new DeliveryMarks()
  private readonly delivery: Delivery

  constructor(private readonly options: HubOptions) {
    const { slowConsumerBytes, rateLimit = 0 } = options
    this.sendLimit =
      slowConsumerBytes === undefined
        ? null
        : { maxBufferedBytes: slowConsumerBytes, onOverflow: (session, buffered) => this.evictSlow(session, buffered) }
    this.rateBurst = options.rateBurst ?? Math.max(1, 2 * rateLimit)
    this.maxBindAttempts = options.maxBindAttempts ?? Infinity
    this.delivery = new Delivery({ ...options, local: this.local, marks: this.marks })
    this.backlog = new BacklogSender({
      store: options.store,
      marks: this.marks,
      metrics: options.metrics,
      maxBufferedBytes: slowConsumerBytes ?? null,
      evictSlow: (session, buffered) => this.evictSlow(session, buffered),
      stopping: () => this.closing,
    })
  }

  /** Starts receiving this node's cluster events (deliveries and closes from other nodes). */
  async start(): Promise<void> {
    await this.options.broker.subscribe(this.options.nodeId, (event) => this.onClusterEvent(event))
  }

  open(connection: Connection, remoteAddress: string): Session {
    const { rateLimit = 0 } = this.options
    const rate = rateLimit > 0 ? new FrameRateLimit(rateLimit, this.rateBurst, performance.now()) : null
    const session = new Session(connection, remoteAddress, this.sendLimit, rate)
    this.sessions.set(session.id, session)
    this.options.metrics?.connectionOpened()
    return session
  }

  /** The connection went away: forget it. Its stored messages stay for recovery. */
  close(session: Session): void {
    session.closed = true
    this.sessions.delete(session.id)
    if (session.uid !== null) this.unregister(session)
  }

  /**
   * One text frame from the client. Rate limited here, once, on arrival, where it also takes
   * the slot its reply will leave in: replies keep frame order (Session.reply).
   */
  handle(session: Session, data: string): void {
    if (session.closed) return
    const slot = session.reserveReply()
    if (!this.overRate(session, data, slot)) this.process(session, data, slot)
  }

  /** A frame the transport refused before parsing (binary, for one). */
  refuse(session: Session, code: Code, msg: string): void {
    if (session.closed) return
    const slot = session.reserveReply()
    if (!this.overRate(session, '', slot)) this.reply(session, slot, code, '', msg)
  }

  private process(session: Session, data: string, slot: number): void {
    // Closed while frames queued behind its bind were being taken (evicted): drop the rest.
    if (session.closed) return
    if (session.queued !== null) {
      session.queue(data, slot)
      return
    }
    const parsed = parseFrame(data)
    this.options.metrics?.frameIn(parsed.ok ? parsed.frame.type : parsed.error.type)
    if (!parsed.ok) {
      const { code, type, ref, msg } = parsed.error
      // A malformed bind is still a bind attempt: the limit counts frames, not good ones.
      if (type === 'bind' && this.tooManyBinds(session)) return
      this.reply(session, slot, code, type, msg, { ref })
      return
    }
    const frame = parsed.frame
    if (this.closing) {
      this.reply(session, slot, Code.SHUTTING_DOWN, frame.type, 'server is shutting down: reconnect elsewhere', { ref: frame.ref })
      return
    }
    if (frame.type === 'bind') {
      if (!this.tooManyBinds(session)) this.track(this.bind(session, frame, slot))
      return
    }
    if (session.uid === null) {
      this.reply(session, slot, Code.NOT_BOUND, frame.type, 'not bound: send bind first', { ref: frame.ref })
      return
    }
    if (frame.uid !== undefined && frame.uid !== session.uid) {
      this.reply(session, slot, Code.UID_MISMATCH, frame.type, 'uid: differs from the bound uid', { ref: frame.ref })
      return
    }
    switch (frame.type) {
      case 'send':
        this.track(this.send(session, session.uid, frame, slot))
        return
      case 'join':
        this.track(this.join(session, frame, slot))
        return
      case 'exit':
        this.exit(session, frame, slot)
        return
    }
  }

  /** Counts a bind frame; past MAX_BIND_ATTEMPTS closes the connection (1008) and says true. */
  private tooManyBinds(session: Session): boolean {
    if (++session.bindAttempts <= this.maxBindAttempts) return false
    this.options.logger.warn({ session: session.id, attempts: session.bindAttempts }, 'too many bind attempts')
    this.evict(session, Close.POLICY_VIOLATION, 'too many bind attempts')
    return true
  }

  /** True when the frame was refused for the rate: 429 (type and ref echoed when readable), or a close. */
  private overRate(session: Session, data: string, slot: number): boolean {
    if (session.rate === null) return false
    const verdict = session.rate.take(performance.now())
    if (verdict === 'ok') return false
    if (verdict === 'abuse') {
      this.options.logger.warn({ session: session.id, uid: session.uid }, 'rate limit ceiling: closing')
      this.evict(session, Close.POLICY_VIOLATION, 'rate limit exceeded')
      return true
    }
    const parsed = parseFrame(data)
    const type = parsed.ok ? parsed.frame.type : parsed.error.type
    const ref = parsed.ok ? parsed.frame.ref : parsed.error.ref
    this.reply(session, slot, Code.RATE_LIMITED, type, 'rate limit exceeded: frame not processed, slow down', { ref })
    return true
  }

  /**
   * The connection's unsent buffer passed SLOW_CONSUMER_BYTES: stop writing to it and
   * close it. Its messages are stored; it gets them back with `since` on its next bind.
   */
  private evictSlow(session: Session, buffered: number): void {
    this.options.logger.warn({ session: session.id, uid: session.uid, buffered }, 'slow consumer: closing')
    this.evict(session, Close.TRY_AGAIN_LATER, 'slow consumer: reconnect and bind with since')
  }

  /** Forgets the session now (presence goes at once) and closes its connection. */
  private evict(session: Session, code: number, reason: string): void {
    this.close(session)
    session.connection.close(code, reason)
  }

  private async bind(session: Session, frame: BindFrame, slot: number): Promise<void> {
    if (session.uid !== null) {
      this.reply(session, slot, Code.ALREADY_BOUND, 'bind', `already bound as ${session.uid}`, { ref: frame.ref, uid: session.uid })
      return
    }
    // Later frames wait until the bind is answered: clients send bind and go on at once.
    session.beginBind()
    try {
      if (await this.authenticate(session, frame, slot)) {
        session.uid = frame.uid
        await this.register(session)
        await this.answerBind(session, frame, slot)
      } else {
        session.takeHeld()
      }
    } catch (err) {
      this.options.logger.error({ err, session: session.id, uid: frame.uid }, 'bind failed')
      this.unregister(session)
      session.uid = null
      session.takeHeld()
      // Failed after its 201 (the replay): a second reply, in the order of now.
      const errorSlot = session.hasReplied(slot) ? session.reserveReply() : slot
      this.reply(session, errorSlot, Code.INTERNAL, 'bind', 'internal error: bind again', { ref: frame.ref })
    }
    for (const { data, slot } of session.takeQueued()) this.process(session, data, slot)
  }

  /** True when bind may go on: no verifier, or a valid token for this uid (else 406 sent). */
  private async authenticate(session: Session, frame: BindFrame, slot: number): Promise<boolean> {
    const { verifier } = this.options
    if (verifier === undefined || verifier === null) return true
    try {
      await verifier.verify(frame.token, frame.uid)
    } catch (err) {
      if (!(err instanceof AuthError)) throw err
      this.options.logger.info({ session: session.id, uid: frame.uid, reason: err.reason }, 'bind refused')
      // uid stays "": the connection is not bound.
      this.reply(session, slot, Code.AUTH_FAILED, 'bind', `authentication failed: ${AUTH_MESSAGES[err.reason]}`, { ref: frame.ref })
      return false
    }
    // The connection may have gone while the token was checked: never register a ghost.
    return !session.closed
  }

  /** 201, then the backlog, then the live messages held meanwhile that it did not carry. */
  private async answerBind(session: Session, frame: BindFrame, slot: number): Promise<void> {
    const uid = frame.uid
    const head = await this.options.store.headMid(uid)
    const reset = frame.since !== undefined && BigInt(frame.since) > BigInt(head)
    const bound = replyFrame(Code.BOUND, 'bind', 'bound', { uid, ref: frame.ref })
    bound.mid = head
    if (reset) bound.reset = true
    session.reply(slot, encodeFrame(bound))
    this.options.metrics?.frameOut('bind', Code.BOUND)

    const { sent, complete } = await this.backlog.send(session, uid, reset ? undefined : frame.since)
    const held = session.takeHeld()
    if (!complete) return
    for (const live of held) {
      if (sent.has(live.mid)) continue
      // Held, it was flagged as not pushed (deliverToUser): now it is, so no later bind repeats it.
      if (!session.send(live.data)) continue
      this.options.metrics?.frameOut('send', Code.MESSAGE)
      this.delivery.setDelivered(uid, live.mid, true)
    }
    this.options.logger.info({ session: session.id, uid, replayed: sent.size }, 'bound')
  }

  private async send(session: Session, from: string, frame: SendFrame, slot: number): Promise<void> {
    const { store, maxMessageLength, metrics } = this.options
    const to = frame.touid
    if (charLength(frame.msg, maxMessageLength) > maxMessageLength) {
      this.reply(session, slot, Code.TOO_LONG, 'send', `msg: longer than ${maxMessageLength} characters`, { ref: frame.ref })
      return
    }
    let stored: StoredMessage
    let duplicate: boolean
    let delivered: boolean
    let started = 0
    let entries: Sessions
    let submitted: (() => void) | undefined
    try {
      const lookup = this.delivery.presenceOf(to)
      const previous = session.storeTurn
      if (lookup instanceof Promise || previous !== null) {
        // Lookups can answer out of order (one may re-read the node leases first): this
        // send's store write waits until the previous send's has been submitted, so a
        // sender's messages are stored, and numbered, in the order they were sent.
        const turn = new Promise<void>((resolve) => (submitted = resolve))
        session.storeTurn = turn
        entries = await Promise.resolve(lookup).catch((err: unknown) => {
          this.options.logger.warn({ err, uid: to }, 'presence unavailable: delivering locally only')
          return NO_SESSIONS
        })
        if (previous !== null) await previous
        if (session.storeTurn === turn) session.storeTurn = null
      } else entries = lookup
      const state = this.delivery.recipientState(to, from, entries)
      delivered = state.delivered
      started = performance.now()
      // An empty ref is echoed but names no message: it cannot make a resend of anything.
      const ref = frame.ref === '' ? undefined : frame.ref
      const appended = store.append({ from, to, msg: frame.msg, ref, read: state.read, delivered })
      submitted?.()
      const result = await appended
      stored = result.message
      duplicate = result.duplicate
      metrics?.storeWrite((performance.now() - started) / 1000, true)
    } catch (err) {
      submitted?.() // a store that threw at once must not hold this connection's next sends
      if (started > 0) metrics?.storeWrite((performance.now() - started) / 1000, false)
      this.options.logger.error({ err, session: session.id, uid: from }, 'store append failed')
      this.reply(session, slot, Code.INTERNAL, 'send', 'internal error: message not stored, send again', { ref: frame.ref })
      return
    }
    const ack = replyFrame(Code.SENT, 'send', '', { uid: from, touid: to, ref: frame.ref })
    ack.mid = stored.mid
    ack.ts = stored.ts
    session.reply(slot, encodeFrame(ack))
    metrics?.frameOut('send', Code.SENT)
    if (duplicate) return
    const routing = this.delivery.route(session, slot, to, stored, entries, delivered)
    if (routing !== undefined) await routing
  }

  /**
   * Opens the conversation at once, in frame order; the 202 goes out once the store has marked
   * it read (a later frame's reply waits for it: replies keep frame order).
   */
  private async join(session: Session, frame: JoinFrame, slot: number): Promise<void> {
    const uid = session.uid!
    // Open first, so that a message arriving while the store marks the rest is read too.
    const previous = session.joined
    const attempt = ++session.joins
    session.joined = frame.touid
    try {
      await Promise.all([this.options.store.markRead(uid, frame.touid), this.publishJoined(session)])
    } catch (err) {
      this.options.logger.error({ err, session: session.id, uid }, 'store markRead failed')
      // Not joined after all, as the 500 says: back to the conversation open before, unless
      // a later join or exit has moved on already. (Messages that arrived meanwhile were
      // marked read on arrival and stay so.)
      if (attempt === session.joins && session.joined === frame.touid) {
        session.joined = previous
        this.track(this.publishJoined(session))
      }
      this.reply(session, slot, Code.INTERNAL, 'join', 'internal error: join again', { ref: frame.ref })
      return
    }
    this.reply(session, slot, Code.JOINED, 'join', 'joined', { uid, touid: frame.touid, ref: frame.ref })
  }

  /**
   * Leaves whatever conversation is open; a `touid` in the frame is ignored. Takes effect at
   * once: this node stops marking read now, and while the Redis connection is ready the
   * presence write is on it before the 203 is on the client's (replies go out at the end of
   * the turn), so a message sent after the 203 is normally looked up after it. The 203 itself
   * waits for the replies of earlier frames (a join's waits for the store).
   */
  private exit(session: Session, frame: ExitFrame, slot: number): void {
    const left = session.joined ?? ''
    session.joined = null
    this.track(this.publishJoined(session))
    this.reply(session, slot, Code.EXITED, 'exit', 'exited', { uid: session.uid ?? '', touid: left, ref: frame.ref })
  }

  /** Tells presence which conversation is open, so senders on other nodes mark read. */
  private async publishJoined(session: Session): Promise<void> {
    if (session.uid === null) return
    try {
      await this.options.presence.setJoined(this.entryOf(session))
    } catch (err) {
      this.options.logger.warn({ err, session: session.id }, 'presence unavailable: open conversation not shared')
    }
  }

  /** Newest bind wins: older sessions here and, through the owner record, on other nodes. */
  private async register(session: Session): Promise<void> {
    const exclusive = !this.options.multiDevice
    for (const old of this.local.add(session, exclusive)) this.replace(old)
    let displaced: PresenceEntry[] = []
    try {
      displaced = await this.options.presence.add(this.entryOf(session), exclusive)
    } catch (err) {
      this.options.logger.warn({ err, session: session.id }, 'presence unavailable: bound on this node only')
    }
    for (const entry of displaced) {
      if (entry.node === this.options.nodeId) continue
      this.options.broker
        .publish(entry.node, { kind: 'close', sessionId: entry.id, reason: 'replaced' })
        .catch((err: unknown) => this.options.logger.warn({ err, node: entry.node }, 'replace message lost: left to reconcile'))
    }
  }

  private replace(old: Session): void {
    const uid = old.uid ?? ''
    old.send(encodeFrame(replyFrame(Code.REPLACED, 'bind', 'replaced: this uid bound on another connection', { uid })))
    this.options.metrics?.frameOut('bind', Code.REPLACED)
    old.uid = null
    this.close(old)
    old.connection.close(Close.REPLACED, 'replaced by a newer connection')
    this.options.logger.info({ session: old.id, uid }, 'replaced by a newer bind')
  }

  private unregister(session: Session): void {
    this.local.remove(session)
    this.options.presence
      .remove(this.entryOf(session))
      .catch((err: unknown) => this.options.logger.warn({ err, session: session.id }, 'presence unavailable: removal left to the lease'))
  }

  private entryOf(session: Session): PresenceEntry {
    return {
      id: session.id,
      uid: session.uid!,
      node: this.options.nodeId,
      joined: session.joined,
      connectedAt: new Date(session.connectedAt).toISOString(),
      remoteAddress: session.remoteAddress,
    }
  }

  private onClusterEvent(event: ClusterEvent): void {
    if (event.kind === 'deliver') {
      this.delivery.fromNode(event)
      return
    }
    if (event.kind === 'resync') {
      this.track(this.resync())
      return
    }
    const session = this.sessions.get(event.sessionId)
    if (session === undefined) return
    if (event.reason === 'replaced') {
      this.local.remove(session)
      this.replace(session)
    } else this.kick(session.id)
  }

  /** Events were lost while the broker was away: push each local session what it missed. */
  private async resync(): Promise<void> {
    const bound = [...this.sessions.values()].filter((s) => s.uid !== null && s.held === null)
    this.options.logger.info({ sessions: bound.length }, 'broker back: catching up missed deliveries')
    for (const session of bound) await this.backlog.send(session, session.uid!, undefined)
  }

  /**
   * Closes local sessions that presence no longer records as their uid's: replaced on
   * another node while the pub/sub message was lost (Redis outage). Run periodically.
   */
  async reconcile(): Promise<void> {
    if (this.options.multiDevice) return
    const bound = [...this.sessions.values()].filter((s) => s.uid !== null)
    if (bound.length === 0) return
    const missing = await this.options.presence.missing(bound.map((s) => this.entryOf(s)))
    for (const id of missing) {
      const session = this.sessions.get(id)
      if (session === undefined || session.uid === null) continue
      this.local.remove(session)
      this.replace(session)
    }
  }

  /** A direct reply to a client frame: it leaves after the replies of earlier frames (`slot`). */
  private reply(session: Session, slot: number, code: Code, type: string, msg: string, fields: ReplyFields = {}): void {
    // `uid` is the bound uid on every reply unless the reply names another.
    const frame = replyFrame(code, type, msg, { uid: session.uid ?? '', ...fields })
    this.options.metrics?.frameOut(frame.type, code)
    if (code >= 400) {
      // 429 at debug: a flooding client would otherwise flood the log as well.
      const level = code === Code.RATE_LIMITED ? 'debug' : 'info'
      this.options.logger[level]({ session: session.id, uid: session.uid, code, type: frame.type, reason: msg }, 'error reply')
    }
    session.reply(slot, encodeFrame(frame))
  }

  /** Counts the work until it settles: one `then` with shared handlers, no closure per frame. */
  private track(work: Promise<void>): void {
    this.inFlight++
    work.then(this.settled, this.failed)
  }

  private readonly settled = (): void => {
    if (--this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve()
  }

  private readonly failed = (err: unknown): void => {
    this.options.logger.error({ err }, 'unexpected hub failure')
    this.settled()
  }

  /** Resolves once no tracked work is in flight. */
  private idle(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Open connections on this node, bound or not. */
  get connectionCount(): number {
    return this.sessions.size
  }

  /** Uids bound on this node. */
  onlineUids(): string[] {
    return this.local.uids()
  }

  /** Bound sessions on this node. */
  listSessions(): SessionInfo[] {
    const out: SessionInfo[] = []
    for (const session of this.sessions.values()) if (session.uid !== null) out.push(this.entryOf(session))
    return out
  }

  /** Bound sessions on every node (presence). */
  async clusterSessions(): Promise<SessionInfo[]> {
    return this.options.presence.sessions()
  }

  /** True when `uid` is bound on any node. */
  async isOnline(uid: string): Promise<boolean> {
    return this.local.has(uid) || (await this.options.presence.sessionsOf(uid)).length > 0
  }

  /** Disconnects one session on this node (admin). False when no such session lives here. */
  kick(id: string): boolean {
    const session = this.sessions.get(id)
    if (session === undefined) return false
    this.evict(session, Close.KICKED, 'disconnected by an administrator')
    return true
  }

  /** Disconnects one session wherever it lives. False when no node has it. */
  async disconnect(id: string): Promise<boolean> {
    if (this.kick(id)) return true
    const entry = (await this.options.presence.sessions()).find((e) => e.id === id)
    if (entry === undefined) return false
    await this.options.broker.publish(entry.node, { kind: 'close', sessionId: id, reason: 'kicked' })
    return true
  }

  /** Shutdown: refuse new frames, tell every client, wait for in-flight store work. */
  async shutdown(): Promise<void> {
    this.closing = true
    await this.idle()
    for (const session of this.sessions.values()) {
      const goodbye = replyFrame(Code.SHUTTING_DOWN, '', 'server is shutting down: reconnect elsewhere', { uid: session.uid ?? '' })
      session.send(encodeFrame(goodbye))
      session.connection.close(Close.GOING_AWAY, 'server shutting down')
    }
    this.options.metrics?.frameOut('', Code.SHUTTING_DOWN, this.sessions.size)
    this.sessions.clear()
    this.local.clear()
  }
}
