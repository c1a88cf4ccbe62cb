// The SQLite store's webhook outbox (migration 6). Events are written by the append, in its
// transaction. The dispatcher's statements run on their own, between the store's batches (one
// connection, synchronous): a claim or a settle waits for no group commit, and a lost settle
// only means a try made again. A claim takes only events whose batch is fsynced (`durable`):
// a power cut can take back a message not yet synced, and its mid would be handed out again.
// One process owns the file, so a lease left by the previous run is released at open.
import type Database from 'better-sqlite3'
import { eventId, midOfEvent, OFFLINE_EVENT, type EventMessage, type FailedEvent, type Outbox, type OutboxEvent, type RetryResult, type SettledTry } from './outbox.js'

const E = 'duet_webhook_events'
const PENDING = 0
const SENT = 1
const FAILED = 2
const NO_MID = 9223372036854775807n
/** The SQLite outbox counts pending events up to this many (pendingCount). */
export const PENDING_COUNT_CAP = 100_000

interface EventRow {
  ts: number
  attempts: number
  mid: number
  sender: string
  recipient: string
  msg: string
  message_ts: number
  last_error: string | null
  last_attempt_at: number | null
}

const EVENT_COLUMNS = `e.ts, e.attempts, m.mid, m.sender, m.recipient, m.msg, m.ts AS message_ts, e.last_error, e.last_attempt_at`

function prepare(db: Database.Database) {
  const settled = `claim = NULL, lease_until = 0, attempts = attempts + 1, last_attempt_at = @at`
  const mine = `mid = @mid AND claim = @claim AND state = ${PENDING}`
  return {
    insert: db.prepare<{ mid: number; ts: number }>(`INSERT INTO ${E} (mid, ts, due_at) VALUES (@mid, @ts, @ts)`),
    insertIfStored: db.prepare<{ mid: number; ts: number }>(
      `INSERT OR IGNORE INTO ${E} (mid, ts, due_at) SELECT mid, @ts, @ts FROM duet_messages WHERE mid = @mid`,
    ),
    claim: db
      .prepare<{ claim: string; now: number; until: number; limit: number; durable: number }, number>(
        `UPDATE ${E} SET claim = @claim, lease_until = @until
         WHERE mid IN (SELECT mid FROM ${E} WHERE state = ${PENDING} AND due_at <= @now AND lease_until <= @now AND mid <= @durable
                       ORDER BY due_at LIMIT @limit)
         RETURNING mid`,
      )
      .pluck(),
    nextDue: db
      .prepare<{ now: number; durable: number }, number>(
        `SELECT due_at FROM ${E} INDEXED BY duet_webhook_events_due
         WHERE state = ${PENDING} AND lease_until <= @now AND mid <= @durable ORDER BY due_at LIMIT 1`,
      )
      .pluck(),
    byMids: db.prepare<[string], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM ${E} e JOIN duet_messages m ON m.mid = e.mid
       WHERE e.mid IN (SELECT value FROM json_each(?)) ORDER BY e.due_at, e.mid`,
    ),
    sent: db.prepare<{ mid: bigint; claim: string; at: number }>(`UPDATE ${E} SET state = ${SENT}, last_error = NULL, ${settled} WHERE ${mine}`),
    retry: db.prepare<{ mid: bigint; claim: string; at: number; error: string; retryAt: number }>(
      `UPDATE ${E} SET last_error = @error, due_at = @retryAt, ${settled} WHERE ${mine}`,
    ),
    failed: db.prepare<{ mid: bigint; claim: string; at: number; error: string }>(
      `UPDATE ${E} SET state = ${FAILED}, last_error = @error, ${settled} WHERE ${mine}`,
    ),
    release: db.prepare<[string]>(`UPDATE ${E} SET claim = NULL, lease_until = 0 WHERE state = ${PENDING} AND claim = ?`),
    releaseAll: db.prepare(`UPDATE ${E} SET claim = NULL, lease_until = 0 WHERE state = ${PENDING} AND claim IS NOT NULL`),
    // Counted on the event loop: up to PENDING_COUNT_CAP, so a scrape during a long outage
    // (a backlog of millions) costs a few milliseconds, not a scan of the whole backlog.
    pending: db
      .prepare<[], number>(`SELECT count(*) FROM (SELECT 1 FROM ${E} WHERE state = ${PENDING} LIMIT ${PENDING_COUNT_CAP})`)
      .pluck(),
    failedPage: db.prepare<{ before: bigint; limit: number }, EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM ${E} e INDEXED BY duet_webhook_events_failed JOIN duet_messages m ON m.mid = e.mid
       WHERE e.state = ${FAILED} AND e.mid < @before ORDER BY e.mid DESC LIMIT @limit`,
    ),
    requeue: db.prepare<{ mid: bigint; now: number }>(
      `UPDATE ${E} SET state = ${PENDING}, attempts = 0, due_at = @now, claim = NULL, lease_until = 0 WHERE mid = @mid AND state = ${FAILED}`,
    ),
    exists: db.prepare<[bigint], number>(`SELECT 1 FROM ${E} WHERE mid = ?`).pluck(),
    tag: db.prepare<[], string>(`SELECT value FROM duet_meta WHERE key = 'webhook_tag'`).pluck(),
    newestMid: db.prepare<[], number | null>(`SELECT max(mid) FROM duet_messages`).pluck(),
  }
}

export class SqliteOutbox implements Outbox {
  private readonly sql: ReturnType<typeof prepare>
  private readonly settleAll: Database.Transaction<(claim: string, tries: readonly SettledTry[]) => void>
  private readonly tag: string
  /** The highest mid of a message whose batch is fsynced: claims take no event above it. */
  private durable: number
  /** The highest mid the batch being applied stored. */
  private batchNewest = 0

  constructor(db: Database.Database) {
    this.sql = prepare(db)
    this.tag = this.sql.tag.get()!
    // What the file holds at open is what survived: all of it is durable.
    this.durable = this.sql.newestMid.get() ?? 0
    this.sql.releaseAll.run()
    // One transaction for a turn's settles: a commit each would cost more than the updates.
    this.settleAll = db.transaction((claim: string, tries: readonly SettledTry[]) => {
      for (const outcome of tries) {
        const mid = this.midOf(outcome.id)
        if (mid === null) continue
        const at = outcome.at
        if (outcome.kind === 'sent') this.sql.sent.run({ mid, claim, at })
        else if (outcome.kind === 'retry') this.sql.retry.run({ mid, claim, at, error: outcome.error, retryAt: outcome.retryAt })
        else this.sql.failed.run({ mid, claim, at, error: outcome.error })
      }
    })
  }

  /** Inside the append's transaction: a message was inserted, and its event when `offline`. */
  appended(mid: number, ts: number, offline: boolean): void {
    if (offline) this.sql.insert.run({ mid, ts })
    if (mid > this.batchNewest) this.batchNewest = mid
  }

  /** A batch starts (again, after a rollback): what an earlier apply noted is void. */
  discard(): void {
    this.batchNewest = 0
  }

  /** The batch has committed: the newest mid it stored, for `synced` once it is fsynced. */
  committed(): number {
    return this.batchNewest
  }

  /** The batch that stored messages up to `mid` is fsynced: their events may be claimed. */
  synced(mid: number): void {
    if (mid > this.durable) this.durable = mid
  }

  async add(message: EventMessage): Promise<void> {
    // The message was acknowledged, so it is durable; the event goes out with the next fsync.
    this.sql.insertIfStored.run({ mid: Number(message.mid), ts: Date.now() })
  }

  async claim(claim: string, limit: number, now: number, leaseUntil: number): Promise<OutboxEvent[]> {
    const mids = this.sql.claim.all({ claim, now, until: leaseUntil, limit, durable: this.durable })
    return mids.length === 0 ? [] : this.sql.byMids.all(JSON.stringify(mids)).map((row) => this.toEvent(row))
  }

  async nextDue(now: number): Promise<number | null> {
    return this.sql.nextDue.get({ now, durable: this.durable }) ?? null
  }

  async settle(claim: string, tries: readonly SettledTry[]): Promise<void> {
    this.settleAll(claim, tries)
  }

  async release(claim: string): Promise<void> {
    this.sql.release.run(claim)
  }

  async pendingCount(): Promise<number> {
    return this.sql.pending.get() ?? 0
  }

  async failed(before: string | null, limit: number): Promise<FailedEvent[]> {
    const cursor = before === null ? NO_MID : this.midOf(before)
    if (cursor === null) return []
    return this.sql.failedPage.all({ before: cursor, limit }).map((row) => ({
      ...this.toEvent(row),
      lastError: row.last_error ?? '',
      lastAttemptAt: row.last_attempt_at ?? 0,
    }))
  }

  async retry(id: string, now: number): Promise<RetryResult> {
    const mid = this.midOf(id)
    if (mid === null) return 'unknown'
    if (this.sql.requeue.run({ mid, now }).changes === 1) return 'requeued'
    return this.sql.exists.get(mid) === undefined ? 'unknown' : 'not-failed'
  }

  /** A bigint: an id may name any mid up to int64's largest, which a Number would round past. */
  private midOf(id: string): bigint | null {
    const mid = midOfEvent(this.tag, id)
    return mid === null ? null : BigInt(mid)
  }

  private toEvent(row: EventRow): OutboxEvent {
    const mid = String(row.mid)
    return {
      id: eventId(this.tag, mid),
      type: OFFLINE_EVENT,
      ts: row.ts,
      attempts: row.attempts,
      message: { mid, from: row.sender, to: row.recipient, msg: row.msg, ts: row.message_ts },
    }
  }
}
