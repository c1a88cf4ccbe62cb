// The webhook outbox: events written with the message they announce, in the same store
// transaction, so a crash at any point loses none (issue 19). Every store keeps one (the
// memory store in memory); the dispatcher (src/webhook/) claims due events with a lease, tries
// each, and settles the try. An event goes when its message does: erased, or purged by
// RETENTION_DAYS (sent and failed events with it, pending ones too).
import type { StoredMessage } from '../protocol/message.js'

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

  /** Records a claimed try. Ignored when the event is no longer leased to `claim`. */
  settle(claim: string, id: string, outcome: TryOutcome): Promise<void>

  /** Gives back, untried, the events still leased to `claim` (a node shutting down). */
  release(claim: string): Promise<void>

  /** Events waiting to be sent (claimed ones included). */
  pendingCount(): Promise<number>

  /** Failed events, newest first, those failed before the one with id `before` when given. */
  failed(before: string | null, limit: number): Promise<FailedEvent[]>

  /** Puts a failed event back in the queue, due now, with a fresh count of tries. */
  retry(id: string, now: number): Promise<RetryResult>
}

/** The exact body a receiver gets, the same bytes on every try (the signature covers them). */
export function eventBody(event: OutboxEvent): string {
  const { mid, from, to, msg, ts } = event.message
  return JSON.stringify({ id: event.id, type: event.type, ts: event.ts, message: { mid, from, to, msg, ts } })
}
