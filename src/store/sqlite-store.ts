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
import { ERASE_CHUNK, type AppendResult, type ConversationSummary, type MessageStore, type NewMessage, type PeerMarks } from './message-store.js'
import { MAX_MID, midBound } from './mid.js'
import { migrateSqlite } from './migrations/sqlite.js'
import type { Logger } from '../logger.js'
import { catchUpConversations, SqliteConversations } from './sqlite-conversations.js'
import { mergeMids } from './mid-merge.js'
import { firstOfBoth, prepareStatements, PURGE_CHUNK, toMessage, type SqliteStatements } from './sqlite-statements.js'
import { sqliteBatchChannel, type SqliteBatchTiming } from './sqlite-batch-channel.js'
import { SqliteOutbox } from './sqlite-outbox.js'
import { beginRun, endRun, UNCLEAN_STOP_WINDOW_MS } from './sqlite-run-state.js'
import { WalSync } from './wal-sync.js'
import { WriteBatcher, type QueuedWrite } from './write-batcher.js'

/** Index entries an export reads from one direction of a conversation at a time. */
const EXPORT_READ = 64
const NO_MIDS: readonly number[] = []

export interface SqliteStoreOptions {
  /** Database file (its directory is created), or `:memory:`. */
  path: string
  logger?: Logger
  /** Most writes per transaction; default 512. */
  maxBatch?: number
  /** How long appends' conversations may wait before the batch due then writes them to the conversation table; default 1000. */
  conversationWriteMs?: number
}

interface PendingWrite extends QueuedWrite {
  /** Runs inside the batch transaction; may run again if the batch is replayed. */
  apply(): void
  /** Called once the batch has committed. */
  commit(): void
  /** performance.now() at submission, while sqliteBatchChannel has subscribers; else 0. */
  queuedAt: number
}

export class SqliteMessageStore implements MessageStore {
  readonly kind = 'sqlite'
  readonly outbox: SqliteOutbox
  private readonly db: Database.Database
  private readonly sql: SqliteStatements
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
    let caughtUp: number
    try {
      migrateSqlite(this.db)
      // The migration's transaction has created the WAL file.
      this.walSync = options.path === ':memory:' ? undefined : new WalSync(options.path)
      requeued = beginRun(this.db)
      caughtUp = catchUpConversations(this.db)
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
    if (caughtUp > 0) {
      this.logger?.warn(
        { messages: caughtUp },
        'the conversation list was behind the messages (the last run did not stop cleanly, or an older duet wrote to this file): brought up to date',
      )
    }
    this.sql = prepareStatements(this.db)
    this.conversationList = new SqliteConversations(this.db, options.conversationWriteMs ?? 1000)
    this.outbox = new SqliteOutbox(this.db)
    this.applyAll = this.db.transaction((batch: PendingWrite[]) => {
      this.conversationList.discard() // whatever a batch that rolled back had noted
      this.outbox.discard()
      for (const write of batch) write.apply()
      this.conversationList.writeIfDue()
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
        this.outbox.appended(Number(inserted.lastInsertRowid), ts, input.offlineEvent === true)
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

  // In the write queue, as since and headMid: after the writes already submitted.
  sentSince(uid: string, afterMid: string, limit: number): Promise<StoredMessage[]> {
    const after = midBound(afterMid)
    return this.enqueue(() => {
      this.conversationList.write()
      return this.sql.sentSince.all({ uid, after, limit }).map(toMessage)
    })
  }

  sentHeadMid(uid: string): Promise<string> {
    return this.enqueue(() => {
      this.conversationList.write()
      return String(this.sql.sentHead.get({ uid })?.mid ?? 0)
    })
  }

  async peerMarks(uid: string, peer: string): Promise<PeerMarks> {
    const row = this.sql.peerMarks.get({ uid, peer })
    return { delivered: String(row?.peer_delivered ?? 0), read: String(row?.peer_read ?? 0) }
  }

  async conversations(uid: string, before: string | null, limit: number): Promise<ConversationSummary[]> {
    const bound = before === null ? MAX_MID : midBound(before)
    this.flushConversations()
    return this.conversationList.list(uid, bound, limit).map((row) => ({
      peer: row.peer,
      unread: row.unread,
      peerDelivered: String(row.peer_delivered),
      peerRead: String(row.peer_read),
      lastMessage: { mid: String(row.mid), from: row.sender, to: row.recipient, ts: row.ts, ...preview(row.msg) },
    }))
  }

  async history(uid: string, peer: string, before: string | null, limit: number): Promise<StoredMessage[]> {
    const bound = before === null ? MAX_MID : midBound(before)
    return this.sql.history.all({ uid, peer, before: bound, limit }).map(toMessage)
  }

  async userMessages(uid: string, afterMid: string, limit: number): Promise<StoredMessage[]> {
    this.flushConversations()
    const mids = this.userMids(uid, midBound(afterMid), limit)
    return mids.length === 0 ? [] : this.sql.byMids.all(`[${mids.join(',')}]`).map(toMessage)
  }

  async eraseUser(uid: string): Promise<number> {
    // Each chunk is a write of its own in the queue: committed and fsynced with the batch it
    // joins, so the event loop serves other work between chunks and an erase that answered
    // stays erased after a power cut. The oldest mids first, as the export reads them: a chunk
    // then deletes neighbouring rows (a few pages each), where a chunk of one conversation's
    // rows would touch a page per row (4 MB of WAL per thousand rows, measured).
    await this.enqueue(() => {
      this.conversationList.write()
      this.sql.eraseMarks.run({ uid })
    })
    let erased = 0
    for (;;) {
      const changes = await this.enqueue(() => {
        this.conversationList.write()
        const mids = this.userMids(uid, 0n, ERASE_CHUNK)
        return mids.length === 0 ? 0 : this.sql.eraseMids.run(`[${mids.join(',')}]`).changes
      })
      erased += changes
      if (changes < ERASE_CHUNK) return erased
    }
  }

  /**
   * The first `limit` mids above `after` of messages to or from `uid`: a merge of every
   * conversation's two directions (mid-merge.ts), each read from the pair index a few rows at a
   * time and only once its next mid is the smallest left. A page reads about `limit` index
   * entries plus a seek per partner, however the user's messages interleave.
   */
  private userMids(uid: string, after: bigint, limit: number): number[] {
    // Sorted by their first mid: a heap already.
    const streams = this.sql.exportFirsts.all({ uid, after }).map((row) => ({ ...row, head: row.first, rows: NO_MIDS, next: 0 }))
    return mergeMids(streams, (s) => this.sql.sinceMids.all(s.recipient, s.sender, BigInt(s.head), MAX_MID, EXPORT_READ), limit)
  }

  async purgeBefore(ts: number, signal?: AbortSignal): Promise<number> {
    let removed = 0
    for (;;) {
      if (this.stopped) throw this.stopped
      const { changes } = this.sql.purgeChunk.run(ts, PURGE_CHUNK)
      removed += changes
      if (this.closed || signal?.aborted === true) return removed
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
    // After a failed fdatasync the run did not end well: the next one requeues its last pushes
    // (and catches up with the conversations it had not written).
    if (!this.stopped) {
      try {
        this.flushConversations()
      } catch (error) {
        this.logger?.warn({ err: error }, 'the conversation list could not be written: the next start brings it up to date')
      }
      endRun(this.db)
    }
    this.db.close()
  }

  /** Writes the conversations noted so far, before a read of the table outside the write queue. */
  private flushConversations(): void {
    if (!this.stopped) this.conversationList.flush()
  }

  /**
   * Runs `exec` in the next batch. One that reads the conversation table (the carbons' replay,
   * an erase) first writes the conversations noted so far: `conversationList.write()`.
   */
  private enqueue<R>(exec: () => R): Promise<R> {
    if (this.closed) return Promise.reject(new Error('sqlite store is closed'))
    if (this.stopped) return Promise.reject(this.stopped)
    return new Promise<R>((resolve, reject) => {
      let result: R
      this.batcher.push({
        queuedAt: sqliteBatchChannel.hasSubscribers ? performance.now() : 0,
        apply: () => {
          result = exec()
        },
        commit: () => resolve(result),
        fail: reject,
      })
    })
  }

  /**
   * Commits a batch, and resolves once its fdatasync has acknowledged it. The batcher submits
   * no other batch meanwhile: what arrives during an fdatasync waits for it and is committed
   * together, one commit per fdatasync instead of one per turn. A message waits no longer for
   * it (its fdatasync could not start before the one in flight ended), and each commit
   * rewrites the same hot index pages to the WAL once for all of them.
   */
  private commitBatch(batch: PendingWrite[]): void | Promise<void> {
    if (this.stopped) {
      for (const write of batch) write.fail(this.stopped)
      return
    }
    const startedAt = sqliteBatchChannel.hasSubscribers ? performance.now() : 0
    try {
      this.applyAll.immediate(batch)
    } catch (error) {
      this.conversationList.discard()
      if (batch.length === 1) return batch[0]!.fail(error)
      // The whole batch rolled back: replay each write alone, so only the bad one fails.
      this.logger?.warn({ err: error, size: batch.length }, 'sqlite batch failed; replaying its writes one by one')
      return Promise.all(batch.map((write) => this.commitBatch([write]))).then(() => undefined)
    }
    this.conversationList.committed()
    const stored = this.outbox.committed()
    const walSync = this.walSync
    if (walSync === undefined) {
      this.outbox.synced(stored)
      for (const write of batch) write.commit()
      return
    }
    const committedAt = startedAt > 0 ? performance.now() : 0
    return new Promise((resolve) =>
      walSync.afterCommit((error) => {
        if (committedAt > 0) publishTiming(batch, startedAt, committedAt)
        // The rows are committed but may not survive a power cut, so they are not acknowledged.
        // After a failed fdatasync the kernel may have dropped the pages it could not write, and
        // a later fdatasync can succeed over the hole: the store stops (fails every write, ping
        // and /readyz) until the server is restarted, as PostgreSQL does on a failed fsync.
        if (error && !this.stopped) {
          this.stopped = new Error('sqlite store stopped after a failed WAL fdatasync: restart the server', { cause: error })
          this.logger?.fatal({ err: error, size: batch.length }, 'sqlite WAL fdatasync failed: store stopped')
        }
        if (!this.stopped) this.outbox.synced(stored)
        for (const write of batch) {
          if (this.stopped) write.fail(this.stopped)
          else write.commit()
        }
        resolve()
      }),
    )
  }
}

function publishTiming(batch: readonly PendingWrite[], startedAt: number, committedAt: number): void {
  const queuedMs = batch.filter((write) => write.queuedAt > 0).map((write) => startedAt - write.queuedAt)
  const timing: SqliteBatchTiming = { queuedMs, commitMs: committedAt - startedAt, syncMs: performance.now() - committedAt }
  sqliteBatchChannel.publish(timing)
}
