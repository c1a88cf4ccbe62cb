// The webhook outbox: events written with the message they announce, in the same store
// transaction, so a crash at any point loses none (issue 19). Every store keeps one (the
// memory store in memory); the dispatcher (src/webhook/) claims due events with a lease, tries
// each, and settles the try. An event goes when its message does: erased, or purged by
// RETENTION_DAYS (sent and failed events with it, pending ones too).
import type { StoredMessage } from '../protocol/message.js'
import { midBound } from './mid.js'

export const OFFLINE_EVENT = 'message.offline'

/** What a receiver is told of the message: the fields of the sender's 204, and the text. */
export type EventMessage = Omit<StoredMessage, 'read'>

export interface OutboxEvent {
  /** Stable across retries: the receiver deduplicates by it. */
  id: string
  type: typeof OFFLINE_EVENT
  /** When the event was written, ms since epoch. */
  ts: number
  /** Tries made before this one. */
  attempts: number
  message: EventMessage
}

export interface FailedEvent extends OutboxEvent {
  lastError: string
  /** ms since epoch. */
  lastAttemptAt: number
}

/** How a try ended. `at`: when it ended (ms). */
export type TryOutcome =
  | { kind: 'sent'; at: number }
  | { kind: 'retry'; at: number; error: string; retryAt: number }
  | { kind: 'failed'; at: number; error: string }

/** A try of one event, settled. */
export type SettledTry = TryOutcome & { id: string }

export type RetryResult = 'requeued' | 'not-failed' | 'unknown'

export interface Outbox {
  /**
   * Writes an event for a message already stored, outside its append: the message was stored
   * as going to a live connection, and its push reached none. A no-op when the message is gone.
   */
  add(message: EventMessage): Promise<void>

  /**
   * Takes up to `limit` due events, oldest due first, and leases them to `claim` until
   * `leaseUntil` (ms): no other claim gets them before, unless they are released. An event
   * whose claimer died comes due again when its lease ends.
   */
  claim(claim: string, limit: number, now: number, leaseUntil: number): Promise<OutboxEvent[]>

  /**
   * When the first event not leased at `now` comes due (ms), or null when none is pending: the
   * dispatcher sets its timer by it, for its retries and every other node's.
   */
  nextDue(now: number): Promise<number | null>

  /** Records claimed tries, together. Each is ignored when its event is no longer leased to `claim`. */
  settle(claim: string, tries: readonly SettledTry[]): Promise<void>

  /** Gives back, untried, the events still leased to `claim` (a node shutting down). */
  release(claim: string): Promise<void>

  /**
   * Events waiting to be sent (claimed ones included). The SQLite store counts up to 100 000
   * (a larger backlog reads as 100 000): its count runs on the event loop.
   */
  pendingCount(): Promise<number>

  /** Failed events, newest first, those failed before the one with id `before` when given. */
  failed(before: string | null, limit: number): Promise<FailedEvent[]>

  /** Puts a failed event back in the queue, due now, with a fresh count of tries. */
  retry(id: string, now: number): Promise<RetryResult>
}

/**
 * An event's id: the store's webhook tag (random, made once per store: a new or wiped store
 * never repeats an old one's ids) and the mid of the message it announces (one event per
 * message, and mids are never reused). Stable across retries, so receivers deduplicate by it.
 */
export const eventId = (tag: string, mid: string): string => `${tag}-${mid}`

/** The mid an event id of this store names (clamped to int64), or null: another store's, or not an event id. */
export function midOfEvent(tag: string, id: string): string | null {
  const dash = id.indexOf('-')
  const mid = id.slice(dash + 1)
  return id.slice(0, dash) === tag && /^[0-9]{1,20}$/.test(mid) ? String(midBound(mid)) : null
}

/** The exact body a receiver gets, the same bytes on every try (the signature covers them). */
export function eventBody(event: OutboxEvent): string {
  const { mid, from, to, msg, ts } = event.message
  return JSON.stringify({ id: event.id, type: event.type, ts: event.ts, message: { mid, from, to, msg, ts } })
}
