// Signals (receipts, typing, carbons) go to the connections of one uid that asked for them: here
// straight to the sockets, and to the other nodes where presence records such a connection. A
// node none of whose sessions of that uid asked for the feature is not bothered. Where presence
// is a network read (Redis), receipts and typing reuse a uid's lookup for a second: a device
// that connects meanwhile misses at most a second of them (receipts are in the REST list, a
// typing notice is gone in five seconds anyway), and a busy chat costs no extra read per message.
// Carbons always look presence up: a missed one would be a missed message.
import { performance } from 'node:perf_hooks'
import type { Broker, ClusterEvent } from '../cluster/broker.js'
import type { Presence, PresenceEntry } from '../cluster/presence.js'
import type { Logger } from '../logger.js'
import type { StoredMessage } from '../protocol/message.js'
import { wants } from './features.js'
import type { LocalSessions } from './local-sessions.js'
import type { Session } from './session.js'

export interface FanOutOptions {
  presence: Presence
  broker: Broker
  logger: Logger
  nodeId: string
  local: LocalSessions
}

/** How long a uid's presence lookup serves the signals that may miss a moment. */
const REUSE_MS = 1000
const MAX_REUSED = 10_000

type Entries = ReadonlyArray<Readonly<PresenceEntry>>

const NO_SESSIONS: readonly Session[] = Object.freeze([])

export class FanOut {
  private readonly reused = new Map<string, { at: number; entries: Promise<Entries> }>()

  constructor(private readonly options: FanOutOptions) {}

  /**
   * False when no connection of `uid` anywhere asked for `bit`: with presence in process that
   * is known at once, so a chat whose clients asked for nothing pays for no signal. Where
   * presence is a network read it cannot be known here: true.
   */
  mayWant(uid: string, bit: number): boolean {
    const { presence, local } = this.options
    if (presence.peekSessionsOf === undefined) return true
    for (const session of local.of(uid) ?? NO_SESSIONS) if (wants(session.features, bit)) return true
    for (const entry of presence.peekSessionsOf(uid)) if (wants(entry.features ?? 0, bit)) return true
    return false
  }

  /**
   * Writes the frame to this node's sessions of `uid` that asked for `bit`, but `except`; how
   * many got it. The frame is encoded only when one asked: nothing is built for nobody. A
   * session whose bind is not answered yet gets no signal; a carbon (`message`) for a session
   * still replaying its bind is held for after the replay, like a live message.
   */
  toLocal(uid: string, bit: number, frame: () => string, except: Session | null = null, message?: StoredMessage): number {
    const sessions = this.options.local.of(uid)
    if (sessions === undefined) return 0
    let data: string | undefined
    let sent = 0
    for (const session of sessions) {
      if (session === except || !wants(session.features, bit)) continue
      if (message !== undefined && session.held !== null) session.hold(message, (data ??= frame()))
      else if (session.signalsOn && session.send((data ??= frame()))) sent++
    }
    return sent
  }

  /**
   * Publishes `event` to every other node where `uid` has a session that asked for `bit`.
   * `reuse`: a lookup of the last second will do (receipts, typing).
   */
  toOtherNodes(uid: string, bit: number, event: ClusterEvent, reuse = false): void {
    const { presence } = this.options
    if (presence.peekSessionsOf !== undefined) {
      this.publish(presence.peekSessionsOf(uid), bit, event)
      return
    }
    const lookup = reuse ? this.recentLookup(uid) : presence.sessionsOf(uid)
    lookup.then(
      (entries) => this.publish(entries, bit, event),
      (err: unknown) => this.options.logger.debug({ err, uid, kind: event.kind }, 'presence unavailable: signal kept to this node'),
    )
  }

  private recentLookup(uid: string): Promise<Entries> {
    const now = performance.now()
    const known = this.reused.get(uid)
    if (known !== undefined && now - known.at < REUSE_MS) return known.entries
    const entries = this.options.presence.sessionsOf(uid)
    this.reused.delete(uid)
    this.reused.set(uid, { at: now, entries })
    // A failed lookup is not reused.
    entries.catch(() => this.reused.get(uid)?.entries === entries && this.reused.delete(uid))
    if (this.reused.size > MAX_REUSED) this.reused.delete(this.reused.keys().next().value!)
    return entries
  }

  private publish(entries: ReadonlyArray<Readonly<PresenceEntry>>, bit: number, event: ClusterEvent): void {
    let nodes: Set<string> | undefined
    for (const entry of entries) {
      if (entry.node !== this.options.nodeId && wants(entry.features ?? 0, bit)) (nodes ??= new Set()).add(entry.node)
    }
    if (nodes === undefined) return
    for (const node of nodes) {
      this.options.broker
        .publish(node, event)
        .catch((err: unknown) => this.options.logger.debug({ err, node, kind: event.kind }, 'signal to another node lost'))
    }
  }
}
