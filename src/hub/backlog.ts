// What a bind sends after its 201: offline messages, or everything after `since`, page by
// page and paced by the connection's buffer, so a large backlog never sits in memory at once.
import { setTimeout as delay } from 'node:timers/promises'
import { Code } from '../protocol/codes.js'
import { encodeFrame, messageFrame } from '../protocol/frames.js'
import type { StoredMessage } from '../protocol/message.js'
import type { MessageStore } from '../store/message-store.js'
import type { DeliveryMarks } from './delivery-marks.js'
import type { HubMetrics } from './hub-metrics.js'
import type { Session } from './session.js'

/** Mids are digit strings without leading zeros: by length, then lexically. */
const compareMids = (a: string, b: string): number => (a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0)

/** How many stored messages one replay query reads at a time. */
const REPLAY_PAGE = 500
/** A replay that cannot get half its buffer out within this is a slow consumer. */
const DRAIN_TIMEOUT_MS = 10_000
const DRAIN_POLL_MS = 10

export interface BacklogOptions {
  store: MessageStore
  /** Flag writes in flight: a replay waits for its uid's, and tracks its own. */
  marks: DeliveryMarks
  metrics: HubMetrics | undefined
  /** The slow-consumer bound; null = unbounded. */
  maxBufferedBytes: number | null
  /** Closes a connection that stopped reading. */
  evictSlow(session: Session, buffered: number): void
  /** True once the hub is shutting down: stop replaying. */
  stopping(): boolean
  /** A replayed message went out: its sender may be told (receipts). */
  replayed?(message: StoredMessage, uid: string): void
}

export interface BacklogResult {
  /** Mids sent, so the live messages held meanwhile are not sent twice. */
  sent: Set<string>
  /** False when the connection closed (or was evicted) before the backlog was out. */
  complete: boolean
}

export class BacklogSender {
  constructor(private readonly options: BacklogOptions) {}

  /**
   * `since` undefined: messages never pushed to a live connection. Else every later one, after
   * the undelivered ones at or below `since` (pushes lost in an outage, which a client that
   * saw later messages cannot know it missed), so mids still go out in ascending order.
   */
  async send(session: Session, uid: string, since: string | undefined, carbons = false): Promise<BacklogResult> {
    const sent = new Set<string>()
    await this.options.marks.settled(uid)
    const cap = since === undefined ? undefined : BigInt(since)
    const complete =
      (await this.pass(session, uid, sent, () => this.options.store.undelivered(uid, REPLAY_PAGE), cap)) &&
      (since === undefined || (await this.pass(session, uid, sent, (after) => this.sincePage(uid, after ?? since, carbons))))
    return { sent, complete }
  }

  /** Messages to `uid` after `after`; with carbons, and those it sent, merged in mid order. */
  private async sincePage(uid: string, after: string, carbons: boolean): Promise<StoredMessage[]> {
    const { store } = this.options
    if (!carbons) return store.since(uid, after, REPLAY_PAGE)
    const [received, sentByUid] = await Promise.all([store.since(uid, after, REPLAY_PAGE), store.sentSince(uid, after, REPLAY_PAGE)])
    return [...received, ...sentByUid].sort((a, b) => compareMids(a.mid, b.mid)).slice(0, REPLAY_PAGE)
  }

  /** Pages through `page` (after = the last mid sent), stopping past `cap`; marks what went out delivered. */
  private async pass(
    session: Session,
    uid: string,
    sent: Set<string>,
    page: (after: string | undefined) => Promise<StoredMessage[]>,
    cap?: bigint,
  ): Promise<boolean> {
    for (let after: string | undefined; ; ) {
      const all = await page(after)
      // Between pages, a shutdown (or the connection's end) stops the replay: what is left
      // stays undelivered for the next bind, and the other clients' goodbyes need not wait.
      if (session.closed || this.options.stopping()) return false
      const messages = cap === undefined ? all : all.filter((m) => BigInt(m.mid) <= cap)
      if (!(await this.write(session, messages, sent))) return false
      if (messages.length === 0) return true
      after = messages[messages.length - 1]!.mid
      // Carbons of what uid sent are not deliveries to uid.
      const mids = messages.filter((message) => message.to === uid).map((message) => message.mid)
      const marking = this.options.store.markDelivered(uid, mids)
      this.options.marks.track(uid, marking)
      await marking
      if (all.length < REPLAY_PAGE || messages.length < all.length) return true
    }
  }

  private async write(session: Session, page: StoredMessage[], sent: Set<string>): Promise<boolean> {
    for (const message of page) {
      if (sent.has(message.mid)) continue
      if (!session.send(encodeFrame(messageFrame(message, true)))) return false
      sent.add(message.mid)
      this.options.metrics?.frameOut('send', Code.MESSAGE)
      if (message.to === session.uid) this.options.replayed?.(message, message.to)
      if (this.overBuffered(session) && !(await this.drained(session))) return false
    }
    return true
  }

  private overBuffered(session: Session): boolean {
    const max = this.options.maxBufferedBytes
    return max !== null && (session.connection.bufferedAmount ?? 0) > max
  }

  /**
   * Waits until half of the bound is written out. False when the session closed or the
   * hub began shutting down meanwhile, or when it made no room within DRAIN_TIMEOUT_MS (then
   * it is closed as a slow consumer). What was not replayed stays in the store.
   */
  private async drained(session: Session): Promise<boolean> {
    const low = (this.options.maxBufferedBytes ?? 0) / 2
    for (let waited = 0; !session.closed && !this.options.stopping(); waited += DRAIN_POLL_MS) {
      const buffered = session.connection.bufferedAmount ?? 0
      if (buffered <= low) return true
      if (waited >= DRAIN_TIMEOUT_MS) {
        this.options.evictSlow(session, buffered)
        return false
      }
      // ws has no 'drain' event on the socket it hands us: poll the buffer, bounded.
      await delay(DRAIN_POLL_MS)
    }
    return false
  }
}
