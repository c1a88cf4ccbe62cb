// Presence contract: which bound sessions exist, on which node, across the cluster.
// In-process (one node) and Redis (many nodes) implementations pass one contract suite.

/** One bound session as the cluster sees it. */
export interface PresenceEntry {
  id: string
  uid: string
  node: string
  /** The peer whose conversation the session has open, or null. */
  joined: string | null
  /** ISO 8601. */
  connectedAt: string
  remoteAddress: string
  /** The signals the session asked for at bind (src/hub/features.ts); absent = none. */
  features?: number
}

export interface Presence {
  /**
   * Records a bound session. With `exclusive`, the session becomes the uid's only owner
   * (atomically: the owner record decides, not a pub/sub message) and the call resolves
   * with the sessions it displaced, on any node, so their nodes can be told to close them.
   * `entry.node` must be this node: a node only records its own sessions (it renews their lease).
   */
  add(entry: PresenceEntry, exclusive: boolean): Promise<PresenceEntry[]>

  /** Updates a session's open conversation. */
  setJoined(entry: PresenceEntry): Promise<void>

  /** Forgets a session (closed, replaced or kicked). */
  remove(entry: PresenceEntry): Promise<void>

  /** The uid's sessions on live nodes. */
  sessionsOf(uid: string): Promise<PresenceEntry[]>

  /**
   * Optional: what sessionsOf would resolve with, synchronously, for engines that hold
   * presence in process. The hub asks it on every send; without it, it awaits sessionsOf.
   */
  peekSessionsOf?(uid: string): ReadonlyArray<Readonly<PresenceEntry>>

  /** Every session on live nodes, whole cluster. */
  sessions(): Promise<PresenceEntry[]>

  /** Of the given session ids, those no longer recorded (replaced or forgotten): to reconcile. */
  missing(entries: PresenceEntry[]): Promise<string[]>

  /** Renews this node's lease; called periodically. Sessions of a node whose lease ran out vanish. */
  heartbeat(): Promise<void>

  /** Rejects when presence cannot be read: for /readyz. */
  ping(): Promise<void>

  close(): Promise<void>
}
