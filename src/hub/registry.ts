// The node's registry (Centrifuge's Hub): every connection on this node, the bound ones by uid,
// their presence entries in the cluster, who replaces whom, the admin's view and hand, and
// every way a connection is closed by the server (slow, replaced, kicked, shutdown).
import type { FrameRateLimit } from '../limits/frame-rate-limit.js'
import type { Broker, ClusterEvent } from '../cluster/broker.js'
import type { Presence, PresenceEntry } from '../cluster/presence.js'
import type { Logger } from '../logger.js'
import { Close, Code } from '../protocol/codes.js'
import { encodeFrame, replyFrame } from '../protocol/frames.js'
import type { HubMetrics } from './hub-metrics.js'
import type { LocalSessions } from './local-sessions.js'
import { Session, type Connection, type SendLimit, type SessionInfo } from './session.js'

const ERASED_REASON = 'user erased by an administrator'

export interface RegistryOptions {
  presence: Presence
  broker: Broker
  logger: Logger
  nodeId: string
  multiDevice: boolean
  /** This node's bound sessions by uid, which the message pipeline pushes to. */
  local: LocalSessions
  /** A connection that makes the server keep more than this is closed with 1013; absent = unbounded. */
  slowConsumerBytes?: number | undefined
  metrics?: HubMetrics | undefined
  /** Told when a uid gets its first session on this node or loses its last, and when a session closes. */
  watchers?: PresenceWatchers | undefined
}

/** What the registry tells live presence (watchers.ts). */
export interface PresenceWatchers {
  changed(uid: string): void
  closed(session: Session): void
}

export class Registry {
  private readonly sessions = new Map<string, Session>()
  private readonly sendLimit: SendLimit | null
  /** True once shutdown began: frames are refused (503) and replays stop. */
  closing = false

  constructor(private readonly options: RegistryOptions) {
    const { slowConsumerBytes } = options
    this.sendLimit =
      slowConsumerBytes === undefined
        ? null
        : { maxBufferedBytes: slowConsumerBytes, onOverflow: (session, buffered) => this.evictSlow(session, buffered) }
  }

  open(connection: Connection, remoteAddress: string, rate: FrameRateLimit | null): Session {
    const session = new Session(connection, remoteAddress, this.sendLimit, rate)
    this.sessions.set(session.id, session)
    this.options.metrics?.connectionOpened()
    return session
  }

  /** The connection went away: forget it. Its stored messages stay for recovery. */
  close(session: Session): void {
    session.closed = true
    this.sessions.delete(session.id)
    this.options.watchers?.closed(session)
    if (session.uid !== null) this.unregister(session)
  }

  /** Newest bind wins: older sessions here and, through the owner record, on other nodes. */
  async register(session: Session): Promise<void> {
    const exclusive = !this.options.multiDevice
    const first = !this.options.local.has(session.uid!)
    for (const old of this.options.local.add(session, exclusive)) this.replace(old)
    let displaced: PresenceEntry[] = []
    try {
      displaced = await this.options.presence.add(this.entryOf(session), exclusive)
    } catch (err) {
      this.options.logger.warn({ err, session: session.id }, 'presence unavailable: bound on this node only')
    }
    // After presence has it, so that the nodes that look again see it.
    if (first && !session.closed) this.options.watchers?.changed(session.uid!)
    for (const entry of displaced) {
      if (entry.node === this.options.nodeId) continue
      this.options.broker
        .publish(entry.node, { kind: 'close', sessionId: entry.id, reason: 'replaced' })
        .catch((err: unknown) => this.options.logger.warn({ err, node: entry.node }, 'replace message lost: left to reconcile'))
    }
  }

  unregister(session: Session): void {
    const uid = session.uid!
    this.options.local.remove(session)
    const last = !this.options.local.has(uid)
    this.options.presence
      .remove(this.entryOf(session))
      .catch((err: unknown) => this.options.logger.warn({ err, session: session.id }, 'presence unavailable: removal left to the lease'))
      .finally(() => {
        if (last) this.options.watchers?.changed(uid)
      })
  }

  /** Tells presence which conversation is open, so senders on other nodes mark read. */
  async publishJoined(session: Session): Promise<void> {
    if (session.uid === null) return
    try {
      await this.options.presence.setJoined(this.entryOf(session))
    } catch (err) {
      this.options.logger.warn({ err, session: session.id }, 'presence unavailable: open conversation not shared')
    }
  }

  /**
   * The connection's retained bytes passed SLOW_CONSUMER_BYTES: stop writing to it and close
   * it. Its messages are stored; it gets them back with `since` on its next bind.
   */
  evictSlow(session: Session, buffered: number): void {
    this.options.logger.warn({ session: session.id, uid: session.uid, buffered }, 'slow consumer: closing')
    this.evict(session, Close.TRY_AGAIN_LATER, 'slow consumer: reconnect and bind with since')
  }

  /** Forgets the session now (presence goes at once) and closes its connection. */
  evict(session: Session, code: number, reason: string): void {
    this.close(session)
    session.connection.close(code, reason)
  }

  private replace(old: Session): void {
    const uid = old.uid ?? ''
    old.send(encodeFrame(replyFrame(Code.REPLACED, 'bind', 'replaced: this uid bound on another connection', { uid })))
    this.options.metrics?.frameOut('bind', Code.REPLACED)
    // Presence forgets the old session's id. The newer bind took the uid's record already;
    // what this removes is the node's own copy of it, which a write-back after a lapsed lease
    // would otherwise restore: a session online with no connection (replaced from another
    // node, or by reconcile, nothing else removed it).
    if (old.uid !== null) {
      this.options.presence
        .remove(this.entryOf(old))
        .catch((err: unknown) => this.options.logger.warn({ err, session: old.id }, 'presence unavailable: removal left to the lease'))
    }
    old.uid = null
    this.close(old)
    old.connection.close(Close.REPLACED, 'replaced by a newer connection')
    this.options.logger.info({ session: old.id, uid }, 'replaced by a newer bind')
  }

  /** Another node replaced or kicked a session of this node. */
  onClusterClose(event: Extract<ClusterEvent, { kind: 'close' }>): void {
    const session = this.sessions.get(event.sessionId)
    if (session === undefined) return
    if (event.reason === 'replaced') {
      this.options.local.remove(session)
      this.replace(session)
    } else if (event.reason === 'erased') this.evict(session, Close.ERASED, ERASED_REASON)
    else this.kick(session.id)
  }

  /**
   * Closes local sessions that presence no longer records as their uid's: replaced on
   * another node while the pub/sub message was lost (Redis outage). Run periodically.
   */
  async reconcile(): Promise<void> {
    if (this.options.multiDevice) return
    const bound = this.bound()
    if (bound.length === 0) return
    const missing = await this.options.presence.missing(bound.map((s) => this.entryOf(s)))
    for (const id of missing) {
      const session = this.sessions.get(id)
      if (session === undefined || session.uid === null) continue
      this.options.local.remove(session)
      this.replace(session)
    }
  }

  /** Bound sessions on this node. */
  bound(): Session[] {
    return [...this.sessions.values()].filter((s) => s.uid !== null)
  }

  entryOf(session: Session): PresenceEntry {
    const entry: PresenceEntry = {
      id: session.id,
      uid: session.uid!,
      node: this.options.nodeId,
      joined: session.joined,
      connectedAt: new Date(session.connectedAt).toISOString(),
      remoteAddress: session.remoteAddress,
    }
    if (session.features !== 0) entry.features = session.features
    return entry
  }

  /** Open connections on this node, bound or not. */
  get connectionCount(): number {
    return this.sessions.size
  }

  /** Uids bound on this node. */
  onlineUids(): string[] {
    return this.options.local.uids()
  }

  /** Bound sessions on this node. */
  listSessions(): SessionInfo[] {
    return this.bound().map((session) => this.entryOf(session))
  }

  /** Bound sessions on every node (presence). */
  async clusterSessions(): Promise<SessionInfo[]> {
    return this.options.presence.sessions()
  }

  /** True when `uid` is bound on any node. */
  async isOnline(uid: string): Promise<boolean> {
    return this.options.local.has(uid) || (await this.options.presence.sessionsOf(uid)).length > 0
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

  /**
   * Closes every connection of `uid`, on every node (4003): the user is being erased.
   * Resolves with how many there were. Sessions on other nodes are asked to close through
   * the broker, as a kick is; without presence only this node's are closed (and it throws).
   */
  async closeUser(uid: string): Promise<number> {
    let closed = 0
    for (const session of [...(this.options.local.of(uid) ?? [])]) {
      this.evict(session, Close.ERASED, ERASED_REASON)
      closed++
    }
    const elsewhere = (await this.options.presence.sessionsOf(uid)).filter((entry) => entry.node !== this.options.nodeId)
    for (const entry of elsewhere) {
      const heard = await this.options.broker.publish(entry.node, { kind: 'close', sessionId: entry.id, reason: 'erased' })
      if (heard) closed++
    }
    return closed
  }

  /** The last step of a shutdown: tells every client and closes it (1001). */
  closeAll(): void {
    for (const session of this.sessions.values()) {
      const goodbye = replyFrame(Code.SHUTTING_DOWN, '', 'server is shutting down: reconnect elsewhere', { uid: session.uid ?? '' })
      session.send(encodeFrame(goodbye))
      session.connection.close(Close.GOING_AWAY, 'server shutting down')
    }
    this.options.metrics?.frameOut('', Code.SHUTTING_DOWN, this.sessions.size)
    this.sessions.clear()
    this.options.local.clear()
  }
}
