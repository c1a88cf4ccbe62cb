// The PostgreSQL store's webhook outbox (migration 4), shared by every node on the database.
// Events are written by the append batch, in its transaction (insertEvents). A claim takes due
// events with FOR UPDATE SKIP LOCKED and leases them in the same statement, so two nodes
// never claim one event; a node that dies leaves its leases to run out, then another takes them.
import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import type { PoolClient, QueryConfig } from 'pg'
import { quoteIdent } from './migrations/postgres.js'
import { OFFLINE_EVENT, type EventMessage, type FailedEvent, type Outbox, type OutboxEvent, type RetryResult, type TryOutcome } from './outbox.js'

const PENDING = 0
const SENT = 1
const FAILED = 2

interface EventRow {
  id: string
  ts: string
  attempts: number
  mid: string
  sender: string
  recipient: string
  msg: string
  message_ts: string
  last_error: string | null
  last_attempt_at: string | null
}

type Statement = Pick<QueryConfig, 'name' | 'text'>

function statements(schema: string) {
  const s = quoteIdent(schema)
  const E = `${s}.duet_webhook_events`
  const M = `${s}.duet_messages`
  const q = (name: string, text: string): Statement => ({ name: `duet_outbox_${name}`, text })
  const columns = `e.id, e.ts, e.attempts, m.mid, m.sender, m.recipient, m.msg, m.ts AS message_ts, e.last_error, e.last_attempt_at`
  const settled = `claim = NULL, lease_until = 0, attempts = attempts + 1, last_attempt_at = $3`
  const mine = `id = $1 AND claim = $2 AND state = ${PENDING}`
  return {
    insert: q('insert', `INSERT INTO ${E} (id, mid, ts, due_at) SELECT id, mid, $3, $3 FROM unnest($1::text[], $2::bigint[]) AS t(id, mid)`),
    insertIfStored: q('insert_if_stored', `INSERT INTO ${E} (id, mid, ts, due_at) SELECT $1, mid, $3, $3 FROM ${M} WHERE mid = $2`),
    claim: q(
      'claim',
      `WITH due AS (
         SELECT seq FROM ${E} WHERE state = ${PENDING} AND due_at <= $1 AND lease_until <= $1
         ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED),
       claimed AS (
         UPDATE ${E} e SET claim = $3, lease_until = $4 FROM due WHERE e.seq = due.seq RETURNING e.*)
       SELECT ${columns} FROM claimed e JOIN ${M} m ON m.mid = e.mid ORDER BY e.due_at, e.seq`,
    ),
    sent: q('sent', `UPDATE ${E} SET state = ${SENT}, last_error = NULL, ${settled} WHERE ${mine}`),
    retry: q('retry', `UPDATE ${E} SET last_error = $4, due_at = $5, ${settled} WHERE ${mine}`),
    failed: q('failed', `UPDATE ${E} SET state = ${FAILED}, last_error = $4, ${settled} WHERE ${mine}`),
    release: q('release', `UPDATE ${E} SET claim = NULL, lease_until = 0 WHERE state = ${PENDING} AND claim = $1`),
    pending: q('pending', `SELECT count(*) AS n FROM ${E} WHERE state = ${PENDING}`),
    failedPage: q(
      'failed_page',
      `SELECT ${columns} FROM ${E} e JOIN ${M} m ON m.mid = e.mid
       WHERE e.state = ${FAILED} AND e.seq < coalesce((SELECT seq FROM ${E} WHERE id = $1), 9223372036854775807)
       ORDER BY e.seq DESC LIMIT $2`,
    ),
    requeue: q(
      'requeue',
      `UPDATE ${E} SET state = ${PENDING}, attempts = 0, due_at = $2, claim = NULL, lease_until = 0 WHERE id = $1 AND state = ${FAILED}`,
    ),
    exists: q('exists', `SELECT 1 FROM ${E} WHERE id = $1`),
  }
}

export class PostgresOutbox implements Outbox {
  private readonly sql: ReturnType<typeof statements>

  constructor(
    private readonly pool: pg.Pool,
    schema: string,
  ) {
    this.sql = statements(schema)
  }

  /** Inside an append batch's transaction: one event for each of these stored messages. */
  async insertEvents(client: PoolClient, mids: readonly string[], ts: number): Promise<void> {
    if (mids.length === 0) return
    await client.query({ ...this.sql.insert, values: [mids.map(() => randomUUID()), mids, ts] })
  }

  async add(message: EventMessage): Promise<void> {
    await this.pool.query({ ...this.sql.insertIfStored, values: [randomUUID(), message.mid, Date.now()] })
  }

  async claim(claim: string, limit: number, now: number, leaseUntil: number): Promise<OutboxEvent[]> {
    const { rows } = await this.pool.query<EventRow>({ ...this.sql.claim, values: [now, limit, claim, leaseUntil] })
    return rows.map(toEvent)
  }

  async settle(claim: string, id: string, outcome: TryOutcome): Promise<void> {
    const mine = [id, claim, outcome.at]
    if (outcome.kind === 'sent') await this.pool.query({ ...this.sql.sent, values: mine })
    else if (outcome.kind === 'retry') await this.pool.query({ ...this.sql.retry, values: [...mine, outcome.error, outcome.retryAt] })
    else await this.pool.query({ ...this.sql.failed, values: [...mine, outcome.error] })
  }

  async release(claim: string): Promise<void> {
    await this.pool.query({ ...this.sql.release, values: [claim] })
  }

  async pendingCount(): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(this.sql.pending)
    return Number(rows[0]?.n ?? 0)
  }

  async failed(before: string | null, limit: number): Promise<FailedEvent[]> {
    const { rows } = await this.pool.query<EventRow>({ ...this.sql.failedPage, values: [before, limit] })
    return rows.map((row) => ({ ...toEvent(row), lastError: row.last_error ?? '', lastAttemptAt: Number(row.last_attempt_at ?? 0) }))
  }

  async retry(id: string, now: number): Promise<RetryResult> {
    const requeued = await this.pool.query({ ...this.sql.requeue, values: [id, now] })
    if (requeued.rowCount === 1) return 'requeued'
    const found = await this.pool.query({ ...this.sql.exists, values: [id] })
    return found.rowCount === 0 ? 'unknown' : 'not-failed'
  }
}

function toEvent(row: EventRow): OutboxEvent {
  return {
    id: row.id,
    type: OFFLINE_EVENT,
    ts: Number(row.ts),
    attempts: row.attempts,
    message: { mid: row.mid, from: row.sender, to: row.recipient, msg: row.msg, ts: Number(row.message_ts) },
  }
}
