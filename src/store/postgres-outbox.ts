// The PostgreSQL store's webhook outbox (migration 4), shared by every node on the database.
// Events are written by the append batch, in its transaction (insertEvents). A claim takes due
// events with FOR UPDATE SKIP LOCKED and leases them in the same statement, so two nodes
// never claim one event; a node that dies leaves its leases to run out, then another takes them.
import type pg from 'pg'
import type { PoolClient, QueryConfig } from 'pg'
import { MAX_MID } from './mid.js'
import { quoteIdent } from './migrations/postgres.js'
import { eventId, midOfEvent, OFFLINE_EVENT, type EventMessage, type FailedEvent, type Outbox, type OutboxEvent, type RetryResult, type SettledTry } from './outbox.js'

const PENDING = 0
const SENT = 1
const FAILED = 2

interface EventRow {
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
  const columns = `e.ts, e.attempts, m.mid, m.sender, m.recipient, m.msg, m.ts AS message_ts, e.last_error, e.last_attempt_at`
  return {
    insert: q('insert', `INSERT INTO ${E} (mid, ts, due_at) SELECT mid, $2, $2 FROM unnest($1::bigint[]) AS t(mid)`),
    insertIfStored: q(
      'insert_if_stored',
      `INSERT INTO ${E} (mid, ts, due_at) SELECT mid, $2, $2 FROM ${M} WHERE mid = $1 ON CONFLICT (mid) DO NOTHING`,
    ),
    claim: q(
      'claim',
      `WITH due AS (
         SELECT mid FROM ${E} WHERE state = ${PENDING} AND due_at <= $1 AND lease_until <= $1
         ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED),
       claimed AS (
         UPDATE ${E} e SET claim = $3, lease_until = $4 FROM due WHERE e.mid = due.mid RETURNING e.*)
       SELECT ${columns} FROM claimed e JOIN ${M} m ON m.mid = e.mid ORDER BY e.due_at, e.mid`,
    ),
    nextDue: q('next_due', `SELECT due_at FROM ${E} WHERE state = ${PENDING} AND lease_until <= $1 ORDER BY due_at LIMIT 1`),
    // A turn's settles in one statement; a row no longer leased to the claim is left alone.
    settle: q(
      'settle',
      `UPDATE ${E} e SET state = t.state, last_error = t.error, due_at = coalesce(t.retry_at, e.due_at),
         claim = NULL, lease_until = 0, attempts = e.attempts + 1, last_attempt_at = t.at
       FROM unnest($2::bigint[], $3::smallint[], $4::text[], $5::bigint[], $6::bigint[]) AS t(mid, state, error, retry_at, at)
       WHERE e.mid = t.mid AND e.claim = $1 AND e.state = ${PENDING}`,
    ),
    release: q('release', `UPDATE ${E} SET claim = NULL, lease_until = 0 WHERE state = ${PENDING} AND claim = $1`),
    pending: q('pending', `SELECT count(*) AS n FROM ${E} WHERE state = ${PENDING}`),
    failedPage: q(
      'failed_page',
      `SELECT ${columns} FROM ${E} e JOIN ${M} m ON m.mid = e.mid
       WHERE e.state = ${FAILED} AND e.mid < $1 ORDER BY e.mid DESC LIMIT $2`,
    ),
    requeue: q(
      'requeue',
      `UPDATE ${E} SET state = ${PENDING}, attempts = 0, due_at = $2, claim = NULL, lease_until = 0 WHERE mid = $1 AND state = ${FAILED}`,
    ),
    exists: q('exists', `SELECT 1 FROM ${E} WHERE mid = $1`),
    tag: q('tag', `SELECT tag FROM ${s}.duet_webhook_tag`),
  }
}

export class PostgresOutbox implements Outbox {
  private readonly sql: ReturnType<typeof statements>
  /** Read by start(), once the schema exists. */
  private tag = ''

  constructor(
    private readonly pool: pg.Pool,
    schema: string,
  ) {
    this.sql = statements(schema)
  }

  async start(): Promise<void> {
    const { rows } = await this.pool.query<{ tag: string }>(this.sql.tag)
    this.tag = rows[0]!.tag
  }

  /** Inside an append batch's transaction: one event for each of these stored messages. */
  async insertEvents(client: PoolClient, mids: readonly string[], ts: number): Promise<void> {
    if (mids.length === 0) return
    await client.query({ ...this.sql.insert, values: [mids, ts] })
  }

  async add(message: EventMessage): Promise<void> {
    await this.pool.query({ ...this.sql.insertIfStored, values: [message.mid, Date.now()] })
  }

  async claim(claim: string, limit: number, now: number, leaseUntil: number): Promise<OutboxEvent[]> {
    const { rows } = await this.pool.query<EventRow>({ ...this.sql.claim, values: [now, limit, claim, leaseUntil] })
    return rows.map((row) => this.toEvent(row))
  }

  async nextDue(now: number): Promise<number | null> {
    const { rows } = await this.pool.query<{ due_at: string }>({ ...this.sql.nextDue, values: [now] })
    return rows.length === 0 ? null : Number(rows[0]!.due_at)
  }

  async settle(claim: string, tries: readonly SettledTry[]): Promise<void> {
    const mine = tries.flatMap((outcome) => {
      const mid = midOfEvent(this.tag, outcome.id)
      return mid === null ? [] : [{ mid, outcome }]
    })
    if (mine.length === 0) return
    const state = { sent: SENT, retry: PENDING, failed: FAILED }
    await this.pool.query({
      ...this.sql.settle,
      values: [
        claim,
        mine.map((t) => t.mid),
        mine.map((t) => state[t.outcome.kind]),
        mine.map((t) => (t.outcome.kind === 'sent' ? null : t.outcome.error)),
        mine.map((t) => (t.outcome.kind === 'retry' ? t.outcome.retryAt : null)),
        mine.map((t) => t.outcome.at),
      ],
    })
  }

  async release(claim: string): Promise<void> {
    await this.pool.query({ ...this.sql.release, values: [claim] })
  }

  async pendingCount(): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(this.sql.pending)
    return Number(rows[0]?.n ?? 0)
  }

  async failed(before: string | null, limit: number): Promise<FailedEvent[]> {
    const cursor = before === null ? MAX_MID : midOfEvent(this.tag, before)
    if (cursor === null) return []
    const { rows } = await this.pool.query<EventRow>({ ...this.sql.failedPage, values: [String(cursor), limit] })
    return rows.map((row) => ({ ...this.toEvent(row), lastError: row.last_error ?? '', lastAttemptAt: Number(row.last_attempt_at ?? 0) }))
  }

  async retry(id: string, now: number): Promise<RetryResult> {
    const mid = midOfEvent(this.tag, id)
    if (mid === null) return 'unknown'
    const requeued = await this.pool.query({ ...this.sql.requeue, values: [mid, now] })
    if (requeued.rowCount === 1) return 'requeued'
    const found = await this.pool.query({ ...this.sql.exists, values: [mid] })
    return found.rowCount === 0 ? 'unknown' : 'not-failed'
  }

  private toEvent(row: EventRow): OutboxEvent {
    return {
      id: eventId(this.tag, row.mid),
      type: OFFLINE_EVENT,
      ts: Number(row.ts),
      attempts: row.attempts,
      message: { mid: row.mid, from: row.sender, to: row.recipient, msg: row.msg, ts: Number(row.message_ts) },
    }
  }
}

