// SQLite MessageStore (better-sqlite3): WAL, writes group-committed, and an append resolves
// only once its row is in the fsynced WAL (see wal-sync.ts), so an acked message survives a
// SIGKILL and a power cut. The reads that hand mids to a client for recovery (headMid, since,
// undelivered) run in the write queue and answer after the same fdatasync, so they never name
// a message a power cut could take back (its mid would be given again). The REST reads see
// committed rows, at most a moment before they are durable.
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import type { StoredMessage } from '../protocol/message.js'
import { preview } from '../protocol/preview.js'
import type { AppendResult, ConversationSummary, MessageStore, NewMessage } from './message-store.js'
import { MAX_MID, midBound } from './mid.js'
import { migrateSqlite } from './migrations/sqlite.js'
import type { Logger } from '../logger.js'
import { repairConversations, SqliteConversations } from './sqlite-conversations.js'
import { beginRun, endRun, UNCLEAN_STOP_WINDOW_MS } from './sqlite-run-state.js'
import { WalSync } from './wal-sync.js'
import { WriteBatcher, type QueuedWrite } from './write-batcher.js'

export interface SqliteStoreOptions {
  /** Database file (its directory is created), or `:memory:`. */
  path: string
  logger?: Logger
  /** Most writes per transaction; default 512. */
  maxBatch?: number
}

interface MessageRow {
  mid: number
  sender: string
  recipient: string
  msg: string
  ts: number
  read: number
}

interface PendingWrite extends QueuedWrite {
  /** Runs inside the batch transaction; may run again if the batch is replayed. */
  apply(): void
  /** Called once the batch has committed. */
  commit(): void
}

const COLUMNS = 'mid, sender, recipient, msg, ts, read'
const PURGE_CHUNK = 1000
const T = 'duet_messages'
const MARKS = 'duet_read_marks'
const PAIR_INDEX = 'duet_messages_recipient_pair'
// The distinct senders of messages to @uid, a seek each (SQLite does no skip-scan here on its
// own). since and headMid walk the recipient pair index sender by sender, so that inserts need
// no (recipient, mid) index (migration 3): they cost a seek or two per conversation partner.
const SENDERS = `s(uid) AS (
  SELECT (SELECT sender FROM ${T} INDEXED BY ${PAIR_INDEX} WHERE recipient = @uid ORDER BY sender LIMIT 1)
  UNION ALL
  SELECT (SELECT sender FROM ${T} INDEXED BY ${PAIR_INDEX} WHERE recipient = @uid AND sender > s.uid ORDER BY sender LIMIT 1)
  FROM s WHERE s.uid IS NOT NULL)`

function prepareStatements(db: Database.Database) {
  // Messages from @peer to @uid above the conversation's read mark: the only ones that can be unread.
  const afterMark = `recipient = @uid AND sender = @peer
    AND mid > coalesce((SELECT mid FROM ${MARKS} WHERE owner = @uid AND peer = @peer), 0)`
  return {
    // run() and its lastInsertRowid, not RETURNING: about a tenth less CPU per insert.
    insert: db.prepare<[string, string, string, number, number, number, string | null]>(
      `INSERT INTO ${T} (sender, recipient, msg, ts, read, delivered, ref) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (sender, recipient, ref) DO NOTHING`,
    ),
    byRef: db.prepare<[string, string, string], MessageRow>(
      `SELECT ${COLUMNS} FROM ${T} WHERE sender = ? AND recipient = ? AND ref = ?`,
    ),
    // The newest mid of any sender's messages to @uid (the index's max per sender).
    head: db.prepare<{ uid: string }, { mid: number | null }>(
      `WITH RECURSIVE ${SENDERS}
       SELECT max((SELECT max(mid) FROM ${T} INDEXED BY ${PAIR_INDEX} WHERE recipient = @uid AND sender = s.uid)) AS mid
       FROM s WHERE s.uid IS NOT NULL`,
    ),
    // The senders with messages to @uid after @after, by the first of those.
    sendersAfter: db.prepare<{ uid: string; after: bigint }, { sender: string; first: number }>(
      `WITH RECURSIVE ${SENDERS},
       -- Materialized, or the subquery would run twice per sender (the filter and the column).
       firsts(sender, first) AS MATERIALIZED (
         SELECT s.uid,
           (SELECT min(mid) FROM ${T} INDEXED BY ${PAIR_INDEX} WHERE recipient = @uid AND sender = s.uid AND mid > @after)
         FROM s WHERE s.uid IS NOT NULL)
       SELECT sender, first FROM firsts WHERE first IS NOT NULL ORDER BY first`,
    ),
    // One sender's first @limit mids after @after and below @below (index only).
    sinceMids: db
      .prepare<[string, string, bigint, bigint | number, number], number>(
        `SELECT mid FROM ${T} INDEXED BY ${PAIR_INDEX}
         WHERE recipient = ? AND sender = ? AND mid > ? AND mid < ? ORDER BY mid LIMIT ?`,
      )
      .pluck(),
    byMids: db.prepare<[string], MessageRow>(
      `SELECT ${COLUMNS} FROM ${T} WHERE mid IN (SELECT value FROM json_each(?)) ORDER BY mid`,
    ),
    undelivered: db.prepare<[string, number], MessageRow>(
      `SELECT ${COLUMNS} FROM ${T} WHERE recipient = ? AND delivered = 0 ORDER BY mid LIMIT ?`,
    ),
    // The page's mids as a JSON array: one statement, however long the page.
    markDelivered: db.prepare<[string, string]>(
      `UPDATE ${T} SET delivered = 1 WHERE recipient = ? AND delivered = 0 AND mid IN (SELECT value FROM json_each(?))`,
    ),
    setDelivered: db.prepare<[number, string, bigint]>(`UPDATE ${T} SET delivered = ? WHERE recipient = ? AND mid = ?`),
    markRead: db.prepare<{ uid: string; peer: string }>(`UPDATE ${T} SET read = 1 WHERE ${afterMark} AND read = 0`),
    // Run after markRead: every message from peer to uid is read now, so the mark moves to the newest.
    moveMark: db.prepare<{ uid: string; peer: string }>(
      `INSERT INTO ${MARKS} (owner, peer, mid)
       SELECT @uid, @peer, max(mid) FROM ${T} WHERE recipient = @uid AND sender = @peer HAVING max(mid) IS NOT NULL
       ON CONFLICT (owner, peer) DO UPDATE SET mid = excluded.mid`,
    ),
    unread: db.prepare<{ uid: string; peer: string }, { n: number }>(
      `SELECT count(*) AS n FROM ${T} WHERE ${afterMark} AND read = 0`,
    ),
    // Both directions, each newest first through the recipient pair index; the second half
    // skips self-messages, which the first half already returned.
    history: db.prepare<{ uid: string; peer: string; before: bigint; limit: number }, MessageRow>(
      `SELECT * FROM (SELECT ${COLUMNS} FROM ${T} INDEXED BY ${PAIR_INDEX}
                      WHERE recipient = @uid AND sender = @peer AND mid < @before ORDER BY mid DESC LIMIT @limit)
       UNION ALL
       SELECT * FROM (SELECT ${COLUMNS} FROM ${T} INDEXED BY ${PAIR_INDEX}
                      WHERE recipient = @peer AND sender = @uid AND sender <> recipient AND mid < @before
                      ORDER BY mid DESC LIMIT @limit)
       ORDER BY mid DESC LIMIT @limit`,
    ),
    // Oldest first along the primary key, a chunk at a time: ts grows with mid, so the
    // scan stops soon after the last old row and needs no index of its own.
    purgeChunk: db.prepare<[number, number]>(
      `DELETE FROM ${T} WHERE mid IN (SELECT mid FROM ${T} WHERE ts < ? ORDER BY mid LIMIT ?)`,
    ),
    // After a purge: the marks of conversations with no message left go too.
    purgeMarks: db.prepare(
      `DELETE FROM ${MARKS} WHERE NOT EXISTS (SELECT 1 FROM ${T} WHERE recipient = owner AND sender = peer)`,
    ),
    ping: db.prepare('SELECT 1'),
  }
}

export class SqliteMessageStore implements MessageStore {
  readonly kind = 'sqlite'
  private readonly db: Database.Database
  private readonly sql: ReturnType<typeof prepareStatements>
  private readonly conversationList: SqliteConversations
  private readonly applyAll: Database.Transaction<(batch: PendingWrite[]) => void>
  private readonly batcher: WriteBatcher<PendingWrite>
  private readonly logger: Logger | undefined
  /** Absent for `:memory:`, which has no file to sync. */
  private readonly walSync: WalSync | undefined
  private closed = false
  /** Set by a failed fdatasync: nothing more is written or acknowledged. */
  private stopped: Error | null = null

  constructor(options: SqliteStoreOptions) {
    this.logger = options.logger
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true })
    this.db = new Database(options.path)
    this.db.pragma('journal_mode = WAL')
    // Commits do not fsync: walSync does, off the event loop, before any write is acknowledged.
    // With FULL the event loop stood still for every commit's fsync.
    this.db.pragma('synchronous = NORMAL')
    // Each message dirties a page of every index; a hot page is rewritten to the WAL by every
    // commit that touches it but copied back to the database once per checkpoint. Checkpoints
    // every ~40 MB of WAL instead of 4 MB, and a page cache holding the indexes' hot pages
    // (32 MB instead of 2), cut the store's CPU per message by about a fifth at small batches.
    this.db.pragma('wal_autocheckpoint = 10000')
    this.db.pragma('cache_size = -32768')
    // Temporary b-trees (sorts, the materialized CTE of since) in memory: as files, each query
    // that needs one opens and deletes a temporary file, about half a millisecond.
    this.db.pragma('temp_store = MEMORY')
    let requeued: number
    let repaired: boolean
    try {
      migrateSqlite(this.db)
      // The migration's transaction has created the WAL file.
      this.walSync = options.path === ':memory:' ? undefined : new WalSync(options.path)
      requeued = beginRun(this.db)
      repaired = repairConversations(this.db)
    } catch (error) {
      this.walSync?.close()
      this.db.close()
      throw error
    }
    if (requeued > 0) {
      this.logger?.warn(
        { requeued, windowMs: UNCLEAN_STOP_WINDOW_MS },
        'the last run did not stop cleanly: its last pushes go out again at their recipients\' next bind',
      )
    }
    if (repaired) this.logger?.warn('an older version of duet wrote to this file: the conversation list was rebuilt')
    this.sql = prepareStatements(this.db)
    this.conversationList = new SqliteConversations(this.db)
    this.applyAll = this.db.transaction((batch: PendingWrite[]) => {
      this.conversationList.discard() // whatever a batch that rolled back had noted
      for (const write of batch) write.apply()
      this.conversationList.write()
    })
    this.batcher = new WriteBatcher((batch) => this.commitBatch(batch), options.maxBatch ?? 512)
  }

  append(input: NewMessage): Promise<AppendResult> {
    return this.enqueue(() => {
      const ts = Date.now()
      const ref = input.ref ?? null
      const inserted = this.sql.insert.run(input.from, input.to, input.msg, ts, +input.read, +input.delivered, ref)
      if (inserted.changes === 1) {
        this.conversationList.appended(input.from, input.to, Number(inserted.lastInsertRowid))
        const message = { mid: String(inserted.lastInsertRowid), from: input.from, to: input.to, msg: input.msg, ts, read: input.read }
        return { message, duplicate: false }
      }
      // Only the (sender, recipient, ref) index can conflict, so the row is there.
      const existing = this.sql.byRef.get(input.from, input.to, ref ?? '')
      if (!existing) throw new Error('append conflicted on (sender, recipient, ref) but no row was found')
      return { message: toMessage(existing), duplicate: true }
    })
  }

  async headMid(uid: string): Promise<string> {
    return this.enqueue(() => {
      const mid = this.sql.head.get({ uid })?.mid
      return mid == null ? '0' : String(mid)
    })
  }

  async since(uid: string, afterMid: string, limit: number): Promise<StoredMessage[]> {
    const after = midBound(afterMid)
    return this.enqueue(() => {
      if (limit < 1) return []
      // The `limit` smallest mids over every sender's messages: the senders in the order of
      // their first message after the cursor, each scan stopping below the smallest found so
      // far, and no scan once a sender's first is past them. Keeps at most `limit` mids.
      let best: number[] = []
      for (const { sender, first } of this.sql.sendersAfter.all({ uid, after })) {
        if (best.length === limit && first > best[limit - 1]!) break
        const below = best.length < limit ? MAX_MID : best[limit - 1]!
        best = firstOfBoth(best, this.sql.sinceMids.all(uid, sender, after, below, limit), limit)
      }
      return best.length === 0 ? [] : this.sql.byMids.all(`[${best.join(',')}]`).map(toMessage)
    })
  }

  async undelivered(uid: string, limit: number): Promise<StoredMessage[]> {
    return this.enqueue(() => this.sql.undelivered.all(uid, limit).map(toMessage))
  }

  markDelivered(uid: string, mids: readonly string[]): Promise<void> {
    const list = `[${mids.map((mid) => String(midBound(mid))).join(',')}]`
    return this.enqueue(() => {
      this.sql.markDelivered.run(uid, list)
    })
  }

  setDelivered(uid: string, mid: string, delivered: boolean): Promise<void> {
    const target = midBound(mid)
    return this.enqueue(() => {
      this.sql.setDelivered.run(+delivered, uid, target)
    })
  }

  markRead(uid: string, peer: string): Promise<number> {
    return this.enqueue(() => {
      const { changes } = this.sql.markRead.run({ uid, peer })
      this.sql.moveMark.run({ uid, peer })
      return changes
    })
  }

  async unreadCount(uid: string, peer: string): Promise<number> {
    return this.sql.unread.get({ uid, peer })?.n ?? 0
  }

  async conversations(uid: string, before: string | null, limit: number): Promise<ConversationSummary[]> {
    const bound = before === null ? MAX_MID : midBound(before)
    return this.conversationList.list(uid, bound, limit).map((row) => ({
      peer: row.peer,
      unread: row.unread,
      lastMessage: { mid: String(row.mid), from: row.sender, to: row.recipient, ts: row.ts, ...preview(row.msg) },
    }))
  }

  async history(uid: string, peer: string, before: string | null, limit: number): Promise<StoredMessage[]> {
    const bound = before === null ? MAX_MID : midBound(before)
    return this.sql.history.all({ uid, peer, before: bound, limit }).map(toMessage)
  }

  async purgeBefore(ts: number): Promise<number> {
    let removed = 0
    for (;;) {
      if (this.stopped) throw this.stopped
      const { changes } = this.sql.purgeChunk.run(ts, PURGE_CHUNK)
      removed += changes
      if (this.closed) return removed
      if (changes < PURGE_CHUNK) {
        if (removed > 0) this.sql.purgeMarks.run()
        return removed
      }
      // Yield between chunks so a large purge never holds the event loop for long.
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  async ping(): Promise<void> {
    if (this.stopped) throw this.stopped
    this.sql.ping.get()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.batcher.drain()
    await this.walSync?.drain()
    this.walSync?.close()
    // After a failed fdatasync the run did not end well: the next one requeues its last pushes.
    if (!this.stopped) endRun(this.db)
    this.db.close()
  }

  private enqueue<R>(exec: () => R): Promise<R> {
    if (this.closed) return Promise.reject(new Error('sqlite store is closed'))
    if (this.stopped) return Promise.reject(this.stopped)
    return new Promise<R>((resolve, reject) => {
      let result: R
      this.batcher.push({
        apply: () => {
          result = exec()
        },
        commit: () => resolve(result),
        fail: reject,
      })
    })
  }

  private commitBatch(batch: PendingWrite[]): void {
    if (this.stopped) {
      for (const write of batch) write.fail(this.stopped)
      return
    }
    try {
      this.applyAll.immediate(batch)
    } catch (error) {
      if (batch.length === 1) return batch[0]!.fail(error)
      // The whole batch rolled back: replay each write alone, so only the bad one fails.
      this.logger?.warn({ err: error, size: batch.length }, 'sqlite batch failed; replaying its writes one by one')
      for (const write of batch) this.commitBatch([write])
      return
    }
    if (!this.walSync) for (const write of batch) write.commit()
    else
      this.walSync.afterCommit((error) => {
        // The rows are committed but may not survive a power cut, so they are not acknowledged.
        // After a failed fdatasync the kernel may have dropped the pages it could not write, and
        // a later fdatasync can succeed over the hole: the store stops (fails every write, ping
        // and /readyz) until the server is restarted, as PostgreSQL does on a failed fsync.
        if (error && !this.stopped) {
          this.stopped = new Error('sqlite store stopped after a failed WAL fdatasync: restart the server', { cause: error })
          this.logger?.fatal({ err: error, size: batch.length }, 'sqlite WAL fdatasync failed: store stopped')
        }
        for (const write of batch) {
          if (this.stopped) write.fail(this.stopped)
          else write.commit()
        }
      })
  }
}

/** The first `limit` of two ascending lists of mids, ascending. */
function firstOfBoth(a: readonly number[], b: readonly number[], limit: number): number[] {
  const out: number[] = []
  let i = 0
  let j = 0
  while (out.length < limit && (i < a.length || j < b.length)) {
    out.push(j === b.length || (i < a.length && a[i]! < b[j]!) ? a[i++]! : b[j++]!)
  }
  return out
}

function toMessage(row: MessageRow): StoredMessage {
  return { mid: String(row.mid), from: row.sender, to: row.recipient, msg: row.msg, ts: row.ts, read: row.read === 1 }
}
