// SQLite's conversation list (migration 5): a row per (owner, peer) holding the mid of the
// conversation's newest message, indexed by (owner, last_mid), so a page of a user's list is
// one index range of `limit` rows however many partners the user has.
// Appends write it once per write batch, one statement for every conversation the batch
// touched. SQLite's triggers run once per row: one that upserted both sides of each message
// cost the store 5–7 µs of CPU per message, against 0–5 µs this way (bench/README.md), and
// a batch of a running chat writes each of its conversations once. Deletes keep it through a
// trigger, whoever deletes. Each batch also records the newest mid the table covers
// (duet_meta `conversations`): a message above it was inserted by an older duet, which does
// not write the table, and the store rebuilds it when it opens (repairConversations).
import type Database from 'better-sqlite3'
import { PREVIEW_LENGTH } from '../protocol/preview.js'
import { peerMarkColumns } from './sqlite-statements.js'

export interface ConversationRow {
  peer: string
  mid: number
  sender: string
  recipient: string
  /** At most PREVIEW_LENGTH + 1 characters: enough to tell whether the preview was cut. */
  msg: string
  ts: number
  unread: number
  peer_delivered: number
  peer_read: number
}

const T = 'duet_messages'
const C = 'duet_conversations'
/** duet_meta's key for the newest mid the table covers (written by migration 5, then every batch). */
const COVERED = 'conversations'

/**
 * A page: newest first down the (owner, last_mid) index. Only the preview's worth of each
 * text is read (substr counts characters; one more tells whether it was cut); unread rows are
 * counted above the conversation's read mark, as unreadCount does.
 */
export const CONVERSATION_PAGE = `SELECT c.peer, m.mid, m.sender, m.recipient, substr(m.msg, 1, ${PREVIEW_LENGTH + 1}) AS msg, m.ts,
    (SELECT count(*) FROM ${T} u WHERE u.recipient = @uid AND u.sender = c.peer AND u.read = 0
       AND u.mid > coalesce((SELECT mid FROM duet_read_marks WHERE owner = @uid AND peer = c.peer), 0)) AS unread,
    ${peerMarkColumns('c.peer')}
  FROM ${C} c JOIN ${T} m ON m.mid = c.last_mid
  WHERE c.owner = @uid AND c.last_mid < @before
  ORDER BY c.last_mid DESC LIMIT @limit`

/** Every conversation's newest mid, from the messages (as migration 5 fills the table). */
export const CONVERSATIONS_FROM_MESSAGES = `SELECT owner, peer, max(mid) AS last_mid FROM (
    SELECT recipient AS owner, sender AS peer, mid FROM ${T}
    UNION ALL
    SELECT sender, recipient, mid FROM ${T} WHERE sender <> recipient
  ) GROUP BY owner, peer`

export class SqliteConversations {
  // A new Map per batch, never clear(): V8 allocates the empty table that clear() leaves in the
  // generation of the old one, and the cleared table keeps its entries and a link to it. Once
  // this long-lived Map's table was old, every batch's table was born old, and the chain of
  // dead tables kept each batch's keys alive through the scavenges: 540–600 KB promoted per
  // scavenge at 2 000 msg/s, scavenges of 3.6–4.6 ms instead of 1.2–1.7 (bench/README.md).
  /** owner NUL peer -> [owner, peer, mid]: the conversations the batch being applied wrote to. */
  private touched = new Map<string, [string, string, number]>()
  private newest = 0
  private readonly upsert: Database.Statement<[string]>
  private readonly cover: Database.Statement<[string]>
  private readonly page: Database.Statement<{ uid: string; before: bigint; limit: number }, ConversationRow>

  constructor(db: Database.Database) {
    this.upsert = db.prepare(
      `INSERT INTO ${C} (owner, peer, last_mid) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true
       ON CONFLICT (owner, peer) DO UPDATE SET last_mid = excluded.last_mid`,
    )
    this.cover = db.prepare(`UPDATE duet_meta SET value = ? WHERE key = '${COVERED}'`)
    this.page = db.prepare(CONVERSATION_PAGE)
  }

  /** A message was inserted by the batch being applied: both sides' conversations are now at `mid`. */
  appended(from: string, to: string, mid: number): void {
    this.touched.set(`${from}\u0000${to}`, [from, to, mid])
    if (from !== to) this.touched.set(`${to}\u0000${from}`, [to, from, mid])
    this.newest = mid
  }

  /** Writes what `appended` noted: before any other write of the batch reads it, and last in the batch transaction. */
  write(): void {
    if (this.touched.size === 0) return
    this.upsert.run(JSON.stringify([...this.touched.values()]))
    this.cover.run(String(this.newest))
    this.touched = new Map()
  }

  /** Forgets what a batch that rolled back had noted. */
  discard(): void {
    if (this.touched.size > 0) this.touched = new Map()
  }

  /** The conversations of `uid` whose newest mid is below `before`, newest first. */
  list(uid: string, before: bigint, limit: number): ConversationRow[] {
    return this.page.all({ uid, before, limit })
  }
}

/**
 * Rebuilds the table when a message above the mid it covers exists: an older duet inserted
 * it without writing its conversation (mids are never reused). Returns whether it did. One
 * lookup along the primary key when there is nothing to do.
 */
export function repairConversations(db: Database.Database): boolean {
  return db
    .transaction(() => {
      const covered = db.prepare<[], string>(`SELECT value FROM duet_meta WHERE key = '${COVERED}'`).pluck().get() ?? '0'
      const above = db.prepare<[string], number>(`SELECT 1 FROM ${T} WHERE mid > CAST(? AS INTEGER) LIMIT 1`).pluck().get(covered)
      if (above === undefined) return false
      db.exec(`DELETE FROM ${C}`)
      db.exec(`INSERT INTO ${C} (owner, peer, last_mid) ${CONVERSATIONS_FROM_MESSAGES}`)
      db.prepare(`UPDATE duet_meta SET value = (SELECT max(mid) FROM ${T}) WHERE key = '${COVERED}'`).run()
      return true
    })
    .immediate()
}
