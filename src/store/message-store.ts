// The storage contract the hub and the REST routes depend on. Every implementation
// (memory, SQLite, PostgreSQL) passes the same contract suite in test/store/.
import type { StoredMessage } from '../protocol/message.js'
import type { Preview } from '../protocol/preview.js'
import type { Outbox } from './outbox.js'

/** Rows an erase deletes per statement (and, in the SQL stores, per transaction). */
export const ERASE_CHUNK = 1000

/**
 * Every message to or from `uid`, oldest first (by mid), a page of `pageSize` at a time.
 * Each page after the first waits a turn of the event loop: a store that reads synchronously
 * (SQLite) answers at once, and a reader that takes every page at once (a socket whose kernel
 * buffer has room) would otherwise run the whole export in one turn, holding up everything else.
 */
export async function* userPages(store: MessageStore, uid: string, pageSize: number): AsyncGenerator<StoredMessage[]> {
  let after = '0'
  for (;;) {
    const page = await store.userMessages(uid, after, pageSize)
    if (page.length > 0) yield page
    if (page.length < pageSize) return
    after = page[page.length - 1]!.mid
    await new Promise((resolve) => setImmediate(resolve))
  }
}

export interface NewMessage {
  from: string
  to: string
  msg: string
  /** The sender's correlation id: a second append with the same (from, to, ref) returns the first message. */
  ref?: string
  /** True when the recipient has the conversation with `from` open right now. */
  read: boolean
  /** True when the message is about to be pushed to a live connection of the recipient. */
  delivered: boolean
  /**
   * Write a `message.offline` webhook event with the message, in the same transaction (the
   * recipient has no live connection anywhere, and WEBHOOK_URL is set). None for a duplicate.
   */
  offlineEvent?: boolean
}

export interface AppendResult {
  message: StoredMessage
  /** True when (from, to, ref) was already stored: nothing new was written. */
  duplicate: boolean
}

/**
 * How far the peer has got with the messages a user sent them: the highest mid delivered to a
 * live connection of the peer, and the highest read ("0" when none). Mids are store-wide
 * increasing, so with the read mark every message below it is read; read implies delivered.
 */
export interface PeerMarks {
  delivered: string
  read: string
}

export interface ConversationSummary {
  peer: string
  unread: number
  /** The peer's marks for the messages this user sent them (PeerMarks), from the rows. */
  peerDelivered: string
  peerRead: string
  /** The conversation's newest message, its text cut to a preview (src/protocol/preview.ts). */
  lastMessage: Omit<StoredMessage, 'read'> & Preview
}

export interface MessageStore {
  /** `memory`, `sqlite` or `postgres`: for logs and /readyz. */
  readonly kind: string

  /** The webhook events written with the messages (outbox.ts). */
  readonly outbox: Outbox

  /** Resolves once the message is durably committed; rejects if it was not stored. */
  append(message: NewMessage): Promise<AppendResult>

  /** The highest mid addressed to `uid`, `"0"` if none. */
  headMid(uid: string): Promise<string>

  /** Messages to `uid` with mid > `afterMid`, ascending, at most `limit`. Read or not. */
  since(uid: string, afterMid: string, limit: number): Promise<StoredMessage[]>

  /**
   * Messages from `uid` to others (not to itself) with mid > `afterMid`, ascending, at most
   * `limit`: what a device with carbons missed of what its user sent from other devices.
   */
  sentSince(uid: string, afterMid: string, limit: number): Promise<StoredMessage[]>

  /** The highest mid of the messages from `uid` to others, `"0"` if none. */
  sentHeadMid(uid: string): Promise<string>

  /** Messages to `uid` never pushed to a live connection, ascending, at most `limit`. */
  undelivered(uid: string, limit: number): Promise<StoredMessage[]>

  /**
   * Marks exactly these messages to `uid` as delivered (a replay's page). Not a range: a
   * message below them set back to undelivered meanwhile (its push was lost) must stay so.
   */
  markDelivered(uid: string, mids: readonly string[]): Promise<void>

  /**
   * Sets one message's delivered flag, for when its push did not go as the append expected:
   * false when it reached no connection (its push to another node was lost, or the recipient
   * left during the write), true when it was pushed although stored as undelivered.
   */
  setDelivered(uid: string, mid: string, delivered: boolean): Promise<void>

  /** Marks every message from `peer` to `uid` as read; resolves with how many changed. */
  markRead(uid: string, peer: string): Promise<number>

  /** Messages from `peer` to `uid` not yet read, counted from the rows. */
  unreadCount(uid: string, peer: string): Promise<number>

  /** How far `peer` has got with the messages `uid` sent them, from the rows (PeerMarks). */
  peerMarks(uid: string, peer: string): Promise<PeerMarks>

  /**
   * One page of the user's conversations, by last activity, newest first: ordered by the mid
   * of each one's newest message. Every store draws its mids from one store-wide sequence, so
   * no two conversations of a user share that mid and the order is total (`ts` would tie
   * within a millisecond, and go back with the clock). `before` (the last mid of the previous
   * page) keeps the conversations whose newest mid is below it. Reads at most `limit`
   * conversations, however many the user has.
   */
  conversations(uid: string, before: string | null, limit: number): Promise<ConversationSummary[]>

  /** Messages between `uid` and `peer` with mid < `before` (or the newest), newest first. */
  history(uid: string, peer: string, before: string | null, limit: number): Promise<StoredMessage[]>

  /**
   * Messages to or from `uid` with mid > `afterMid`, ascending, at most `limit`: one page of
   * the user's export (userPages walks them). Reads a page's worth, however many there are.
   */
  userMessages(uid: string, afterMid: string, limit: number): Promise<StoredMessage[]>

  /**
   * Erases `uid`: deletes every message to or from them, and their refs with them (a later
   * send with such a ref stores a new message), the read state of their conversations on
   * both sides, and the webhook events of those messages. The peers' unread counts and
   * conversation lists no longer show those messages. Works a chunk at a time (ERASE_CHUNK rows), letting other work run between chunks;
   * resolves with how many messages went. Idempotent: a second erase deletes nothing.
   */
  eraseUser(uid: string): Promise<number>

  /**
   * Deletes messages stored before `ts` (ms since epoch) and their webhook events; resolves with
   * how many messages went. Once `signal` is aborted (a shutdown), it stops between chunks:
   * what is left goes at the next purge.
   */
  purgeBefore(ts: number, signal?: AbortSignal): Promise<number>

  /** Rejects when the store cannot serve: for /readyz. */
  ping(): Promise<void>

  /** Flushes pending writes and releases the connection. */
  close(): Promise<void>
}
