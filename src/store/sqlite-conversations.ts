// SQLite's conversation list (migration 5): a row per (owner, peer) holding the mid of the
// conversation's newest message, indexed by (owner, last_mid), so a page of a user's list is
// one index range of `limit` rows however many partners the user has.
// Appends note their conversations here, and the store writes them to the table once a
// second (or once CATCH_UP_ENTRIES are noted), in the batch transaction due then, and at once
// before anything reads the table. Written with every batch, the table, its index and the
// newest mid it covers were three of the ten WAL pages a commit of two messages wrote: about a
// tenth of the server's CPU per message at 2 000 and 10 000 msg/s (bench/README.md). A trigger
// that upserted both sides of each message cost 5–7 µs of CPU per message (SQLite's triggers run
// once per row). Deletes keep the table through a trigger, whoever deletes. The table records
// the newest mid it covers (duet_meta `conversations`): the messages above it, noted by a run
// that was killed before it wrote them or inserted by an older duet that does not write the
// table, are added when the store opens (catchUpConversations). That mark assumes one process
// writes the file, as sqlite-run-state does.
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

/** The newest mid of every conversation with a message above @covered, from the messages (0: every conversation). */
export const CONVERSATIONS_ABOVE = `SELECT owner, peer, max(mid) AS last_mid FROM (
    SELECT recipient AS owner, sender AS peer, mid FROM ${T} WHERE mid > @covered
    UNION ALL
    SELECT sender, recipient, mid FROM ${T} WHERE mid > @covered AND sender <> recipient
  ) GROUP BY owner, peer`

/** Noted conversations that make the next batch write the table, whatever the time. */
const CATCH_UP_ENTRIES = 256

type Entry = [owner: string, peer: string, mid: number]

export class SqliteConversations {
  // New Maps, never clear(): V8 allocates the empty table that clear() leaves in the generation
  // of the old one, and the cleared table keeps its entries and a link to it. Once a long-lived
  // Map's table was old, every later table was born old, and the chain of dead tables kept each
  // batch's keys alive through the scavenges: 540–600 KB promoted per scavenge at 2 000 msg/s,
  // scavenges of 3.6–4.6 ms instead of 1.2–1.7 (bench/README.md).
  /** owner NUL peer -> entry: committed appends whose conversation the table does not show yet. */
  private pending = new Map<string, Entry>()
  /** The same, noted by the open batch transaction since it last wrote the table. */
  private unwritten = new Map<string, Entry>()
  /** The open batch transaction has written `pending`. */
  private wroteInBatch = false
  private writtenAt = Date.now()
  private readonly upsert: Database.Statement<[string]>
  private readonly cover: Database.Statement<[string]>
  private readonly page: Database.Statement<{ uid: string; before: bigint; limit: number }, ConversationRow>
  private readonly writeAlone: Database.Transaction<() => void>

  constructor(
    db: Database.Database,
    /** How long appends' conversations may wait to be written; the list's readers never wait for it. */
    private readonly writeEveryMs: number,
  ) {
    // Only messages that are still there: another connection may have deleted one since it was
    // noted (its trigger has already set the conversation right). max(): never back to an older mid.
    this.upsert = db.prepare(
      `INSERT INTO ${C} (owner, peer, last_mid)
       SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE EXISTS (SELECT 1 FROM ${T} WHERE mid = value ->> 2)
       ON CONFLICT (owner, peer) DO UPDATE SET last_mid = max(last_mid, excluded.last_mid)`,
    )
    this.cover = db.prepare(`UPDATE duet_meta SET value = ? WHERE key = '${COVERED}'`)
    this.page = db.prepare(CONVERSATION_PAGE)
    this.writeAlone = db.transaction(() => this.write())
  }

  /** A message was inserted by the batch being applied: both sides' conversations are now at `mid`. */
  appended(from: string, to: string, mid: number): void {
    this.unwritten.set(`${from}\u0000${to}`, [from, to, mid])
    if (from !== to) this.unwritten.set(`${to}\u0000${from}`, [to, from, mid])
  }

  /**
   * Writes every noted conversation to the table, inside a transaction: a batch's, before any
   * of its writes reads the table, or `flush`'s. What it wrote counts once that transaction has
   * committed (`committed`).
   */
  write(): void {
    const entries = this.wroteInBatch ? [...this.unwritten.values()] : this.pendingAndUnwritten()
    if (entries.length === 0) return
    let newest = 0
    for (const entry of entries) newest = Math.max(newest, entry[2])
    this.upsert.run(JSON.stringify(entries))
    // Every committed message is at most the newest noted one, and now in the table.
    this.cover.run(String(newest))
    this.wroteInBatch = true
    this.unwritten = new Map()
  }

  /** At the end of a batch transaction: writes the table when it has waited long enough, or holds enough. */
  writeIfDue(): void {
    const noted = (this.wroteInBatch ? 0 : this.pending.size) + this.unwritten.size
    if (noted > 0 && (noted >= CATCH_UP_ENTRIES || Date.now() - this.writtenAt >= this.writeEveryMs)) this.write()
  }

  /** The batch transaction committed: what it noted and did not write waits for the next write. */
  committed(): void {
    if (this.wroteInBatch) {
      this.pending = this.unwritten
      this.writtenAt = Date.now()
    } else {
      for (const [key, entry] of this.unwritten) this.pending.set(key, entry)
    }
    this.discard()
  }

  /** At the start of a batch transaction: forgets what one that rolled back had noted or written. */
  discard(): void {
    if (this.unwritten.size > 0) this.unwritten = new Map()
    this.wroteInBatch = false
  }

  /** Writes what is pending in a transaction of its own: before a read or a delete outside the batches. */
  flush(): void {
    if (this.pending.size === 0) return
    this.discard()
    this.writeAlone.immediate()
    this.committed()
  }

  /** The conversations of `uid` whose newest mid is below `before`, newest first, as the table has them (`flush` first). */
  list(uid: string, before: bigint, limit: number): ConversationRow[] {
    return this.page.all({ uid, before, limit })
  }

  private pendingAndUnwritten(): Entry[] {
    const entries: Entry[] = []
    for (const [key, entry] of this.pending) if (!this.unwritten.has(key)) entries.push(entry)
    for (const entry of this.unwritten.values()) entries.push(entry)
    return entries
  }
}

/**
 * Adds the messages above the mid the table covers: noted by a run that stopped before it
 * wrote them, or inserted by an older duet, which does not write the table (mids are never
 * reused, and every delete has kept the table through its trigger). Returns how many there
 * were: one lookup along the primary key when there are none.
 */
export function catchUpConversations(db: Database.Database): number {
  return db
    .transaction(() => {
      const covered = BigInt(db.prepare<[], string>(`SELECT value FROM duet_meta WHERE key = '${COVERED}'`).pluck().get() ?? '0')
      const above = db.prepare<[bigint], number>(`SELECT count(*) FROM ${T} WHERE mid > ?`).pluck().get(covered) ?? 0
      if (above === 0) return 0
      db.prepare(
        `INSERT INTO ${C} (owner, peer, last_mid) ${CONVERSATIONS_ABOVE}
         ON CONFLICT (owner, peer) DO UPDATE SET last_mid = max(last_mid, excluded.last_mid)`,
      ).run({ covered })
      db.prepare(`UPDATE duet_meta SET value = (SELECT max(mid) FROM ${T}) WHERE key = '${COVERED}'`).run()
      return above
    })
    .immediate()
}
