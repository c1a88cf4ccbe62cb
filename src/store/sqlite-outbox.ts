// The SQLite store's webhook outbox (migration 6). Events are written by the append, in its
// transaction; claims and settles go through the store's write queue too, so a claim sees
// an event only once the batch that wrote it is fsynced, and a settle lands after its claim.
// One process owns the file, so a lease left by the previous run is released at open.
import { randomUUID } from 'node:crypto'
import type Database from 'better-sqlite3'
import { OFFLINE_EVENT, type EventMessage, type FailedEvent, type Outbox, type OutboxEvent, type RetryResult, type TryOutcome } from './outbox.js'

const E = 'duet_webhook_events'
const PENDING = 0
const SENT = 1
const FAILED = 2

interface EventRow {
  id: string
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

const EVENT_COLUMNS = `e.id, e.ts, e.attempts, m.mid, m.sender, m.recipient, m.msg, m.ts AS message_ts, e.last_error, e.last_attempt_at`

/** Runs `exec` in the store's write queue; resolves once its batch is durable. */
export type QueuedWriter = <R>(exec: () => R) => Promise<R>

function prepare(db: Database.Database) {
  const settled = `claim = NULL, lease_until = 0, attempts = attempts + 1, last_attempt_at = @at`
  const mine = `id = @id AND claim = @claim AND state = ${PENDING}`
  return {
    insert: db.prepare<{ id: string; mid: number; ts: number }>(`INSERT INTO ${E} (id, mid, ts, due_at) VALUES (@id, @mid, @ts, @ts)`),
    insertIfStored: db.prepare<{ id: string; mid: number; ts: number }>(
      `INSERT INTO ${E} (id, mid, ts, due_at) SELECT @id, mid, @ts, @ts FROM duet_messages WHERE mid = @mid`,
    ),
    claim: db
      .prepare<{ claim: string; now: number; until: number; limit: number }, number>(
        `UPDATE ${E} SET claim = @claim, lease_until = @until
         WHERE seq IN (SELECT seq FROM ${E} WHERE state = ${PENDING} AND due_at <= @now AND lease_until <= @now
                       ORDER BY due_at LIMIT @limit)
         RETURNING seq`,
      )
      .pluck(),
    bySeqs: db.prepare<[string], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM ${E} e JOIN duet_messages m ON m.mid = e.mid
       WHERE e.seq IN (SELECT value FROM json_each(?)) ORDER BY e.due_at, e.seq`,
    ),
    sent: db.prepare<{ id: string; claim: string; at: number }>(`UPDATE ${E} SET state = ${SENT}, last_error = NULL, ${settled} WHERE ${mine}`),
    retry: db.prepare<{ id: string; claim: string; at: number; error: string; retryAt: number }>(
      `UPDATE ${E} SET last_error = @error, due_at = @retryAt, ${settled} WHERE ${mine}`,
    ),
    failed: db.prepare<{ id: string; claim: string; at: number; error: string }>(
      `UPDATE ${E} SET state = ${FAILED}, last_error = @error, ${settled} WHERE ${mine}`,
    ),
    release: db.prepare<[string]>(`UPDATE ${E} SET claim = NULL, lease_until = 0 WHERE state = ${PENDING} AND claim = ?`),
    releaseAll: db.prepare(`UPDATE ${E} SET claim = NULL, lease_until = 0 WHERE state = ${PENDING} AND claim IS NOT NULL`),
    pending: db.prepare<[], number>(`SELECT count(*) FROM ${E} WHERE state = ${PENDING}`).pluck(),
    failedPage: db.prepare<{ before: string | null; limit: number }, EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM ${E} e JOIN duet_messages m ON m.mid = e.mid
       WHERE e.state = ${FAILED} AND e.seq < coalesce((SELECT seq FROM ${E} WHERE id = @before), 9223372036854775807)
       ORDER BY e.seq DESC LIMIT @limit`,
    ),
    requeue: db.prepare<{ id: string; now: number }>(
      `UPDATE ${E} SET state = ${PENDING}, attempts = 0, due_at = @now, claim = NULL, lease_until = 0 WHERE id = @id AND state = ${FAILED}`,
    ),
    exists: db.prepare<[string], number>(`SELECT 1 FROM ${E} WHERE id = ?`).pluck(),
  }
}

export class SqliteOutbox implements Outbox {
  private readonly sql: ReturnType<typeof prepare>

  constructor(
    db: Database.Database,
    private readonly write: QueuedWriter,
  ) {
    this.sql = prepare(db)
    this.sql.releaseAll.run()
  }

  /** Inside the append's transaction: the event of the message just inserted. */
  written(mid: number, ts: number): void {
    this.sql.insert.run({ id: randomUUID(), mid, ts })
  }

  add(message: EventMessage): Promise<void> {
    return this.write(() => {
      this.sql.insertIfStored.run({ id: randomUUID(), mid: Number(message.mid), ts: Date.now() })
    })
  }

  claim(claim: string, limit: number, now: number, leaseUntil: number): Promise<OutboxEvent[]> {
    return this.write(() => {
      const seqs = this.sql.claim.all({ claim, now, until: leaseUntil, limit })
      return seqs.length === 0 ? [] : this.sql.bySeqs.all(JSON.stringify(seqs)).map(toEvent)
    })
  }

  settle(claim: string, id: string, outcome: TryOutcome): Promise<void> {
    return this.write(() => {
      if (outcome.kind === 'sent') this.sql.sent.run({ id, claim, at: outcome.at })
      else if (outcome.kind === 'retry') this.sql.retry.run({ id, claim, at: outcome.at, error: outcome.error, retryAt: outcome.retryAt })
      else this.sql.failed.run({ id, claim, at: outcome.at, error: outcome.error })
    })
  }

  release(claim: string): Promise<void> {
    return this.write(() => {
      this.sql.release.run(claim)
    })
  }

  async pendingCount(): Promise<number> {
    return this.sql.pending.get() ?? 0
  }

  async failed(before: string | null, limit: number): Promise<FailedEvent[]> {
    return this.sql.failedPage.all({ before, limit }).map((row) => ({
      ...toEvent(row),
      lastError: row.last_error ?? '',
      lastAttemptAt: row.last_attempt_at ?? 0,
    }))
  }

  retry(id: string, now: number): Promise<RetryResult> {
    return this.write(() => {
      if (this.sql.requeue.run({ id, now }).changes === 1) return 'requeued'
      return this.sql.exists.get(id) === undefined ? 'unknown' : 'not-failed'
    })
  }
}

function toEvent(row: EventRow): OutboxEvent {
  return {
    id: row.id,
    type: OFFLINE_EVENT,
    ts: row.ts,
    attempts: row.attempts,
    message: { mid: String(row.mid), from: row.sender, to: row.recipient, msg: row.msg, ts: row.message_ts },
  }
}
