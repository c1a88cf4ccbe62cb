// PostgreSQL MessageStore (node-postgres), safe for several nodes on one database.
// Writes are group-committed: one transaction per batch, a run of appends as one multi-row
// INSERT. Every write batch first locks the single duet_seq row, so batches commit one at a
// time cluster-wide: mids are handed out in commit order (a `since` replay never skips a
// late commit), and two batches can never deadlock on message rows.
import pg from 'pg'
import type { PoolClient, QueryConfig } from 'pg'
import type { StoredMessage } from '../protocol/message.js'
import { preview } from '../protocol/preview.js'
import { ERASE_CHUNK, type AppendResult, type ConversationSummary, type MessageStore, type NewMessage, type PeerMarks } from './message-store.js'
import { MAX_MID, midBound } from './mid.js'
import { migratePostgres } from './migrations/postgres.js'
import { PostgresOutbox } from './postgres-outbox.js'
import type { Logger } from '../logger.js'
import { WriteBatcher } from './write-batcher.js'
import { PURGE_CHUNK, resolveSchema, statements, toMessage, type AppendWrite, type MessageRow, type PgWrite } from './postgres-statements.js'

export interface PostgresStoreOptions {
  /** postgres:// or postgresql:// URL. A `schema` query parameter is used (and stripped) when `schema` is not given. */
  url: string
  /** Schema holding the tables, created if missing; default `public`. */
  schema?: string
  /** Connections in the pool; default 10. */
  poolSize?: number
  /** Most writes per transaction; default 512. */
  maxBatch?: number
  logger?: Logger
}

export class PostgresMessageStore implements MessageStore {
  readonly kind = 'postgres'
  readonly schema: string
  readonly outbox: PostgresOutbox
  private readonly pool: pg.Pool
  private readonly sql: ReturnType<typeof statements>
  private readonly batcher: WriteBatcher<PgWrite>
  private readonly logger: Logger | undefined
  private closed = false

  /** Call `start()` before use: it creates or migrates the schema. */
  constructor(options: PostgresStoreOptions) {
    const { url, schema } = resolveSchema(options.url, options.schema)
    this.schema = schema
    this.logger = options.logger
    this.pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      application_name: 'duet',
      // A server that silently drops packets must fail sends (500, safe to retry) and
      // /readyz in seconds, not after the operating system's TCP timeouts.
      connectionTimeoutMillis: 5_000,
      query_timeout: 15_000,
    })
    // An idle connection dropped by the server must not crash the process; the pool replaces it.
    this.pool.on('error', (err) => this.logger?.error({ err }, 'idle postgres connection failed'))
    this.sql = statements(schema)
    this.outbox = new PostgresOutbox(this.pool, schema)
    this.batcher = new WriteBatcher((batch) => this.commitBatch(batch), options.maxBatch ?? 512)
  }

  /** Runs the migrations (safe on several nodes at once); resolves with the ready store. */
  async start(): Promise<this> {
    try {
      const client = await this.pool.connect()
      try {
        await migratePostgres(client, this.schema)
      } finally {
        client.release()
      }
      await this.outbox.start()
    } catch (error) {
      await this.pool.end().catch(() => undefined)
      throw error
    }
    return this
  }

  append(input: NewMessage): Promise<AppendResult> {
    // PostgreSQL text cannot hold NUL; failing here keeps it from failing a whole batch.
    if ([input.from, input.to, input.msg, input.ref ?? ''].some((text) => text.includes('\u0000'))) {
      return Promise.reject(new Error('postgres store cannot store text containing NUL (\\u0000)'))
    }
    return this.enqueue<AppendResult>((resolve, fail) => ({ kind: 'append', input, resolve, fail }))
  }

  async headMid(uid: string): Promise<string> {
    const { rows } = await this.pool.query<{ mid: string }>({ ...this.sql.head, values: [uid] })
    return rows[0]?.mid ?? '0'
  }

  async since(uid: string, afterMid: string, limit: number): Promise<StoredMessage[]> {
    const values = [uid, String(midBound(afterMid)), limit]
    const { rows } = await this.pool.query<MessageRow>({ ...this.sql.since, values })
    return rows.map(toMessage)
  }

  async undelivered(uid: string, limit: number): Promise<StoredMessage[]> {
    const { rows } = await this.pool.query<MessageRow>({ ...this.sql.undelivered, values: [uid, limit] })
    return rows.map(toMessage)
  }

  markDelivered(uid: string, mids: readonly string[]): Promise<void> {
    const bounded = mids.map((mid) => String(midBound(mid)))
    return this.enqueue<void>((resolve, fail) => ({ kind: 'markDelivered', uid, mids: bounded, resolve, fail }))
  }

  setDelivered(uid: string, mid: string, delivered: boolean): Promise<void> {
    const target = String(midBound(mid))
    return this.enqueue<void>((resolve, fail) => ({ kind: 'setDelivered', uid, mid: target, delivered, resolve, fail }))
  }

  markRead(uid: string, peer: string): Promise<number> {
    return this.enqueue<number>((resolve, fail) => ({ kind: 'markRead', uid, peer, resolve, fail }))
  }

  async unreadCount(uid: string, peer: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>({ ...this.sql.unread, values: [uid, peer] })
    return Number(rows[0]?.n ?? 0)
  }

  async sentSince(uid: string, afterMid: string, limit: number): Promise<StoredMessage[]> {
    const { rows } = await this.pool.query<MessageRow>({ ...this.sql.sentSince, values: [uid, String(midBound(afterMid)), limit] })
    return rows.map(toMessage)
  }

  async sentHeadMid(uid: string): Promise<string> {
    const { rows } = await this.pool.query<{ mid: string | null }>({ ...this.sql.sentHead, values: [uid] })
    return rows[0]?.mid ?? '0'
  }

  async peerMarks(uid: string, peer: string): Promise<PeerMarks> {
    const { rows } = await this.pool.query<{ peer_delivered: string; peer_read: string }>({ ...this.sql.peerMarks, values: [uid, peer] })
    return { delivered: String(rows[0]?.peer_delivered ?? '0'), read: String(rows[0]?.peer_read ?? '0') }
  }

  async conversations(uid: string, before: string | null, limit: number): Promise<ConversationSummary[]> {
    const bound = String(before === null ? MAX_MID : midBound(before))
    const { rows } = await this.pool.query<Omit<MessageRow, 'read'> & { peer: string; unread: string; peer_delivered: string; peer_read: string }>({
      ...this.sql.conversations,
      values: [uid, bound, limit],
    })
    return rows.map((row) => ({
      peer: row.peer,
      unread: Number(row.unread),
      peerDelivered: String(row.peer_delivered),
      peerRead: String(row.peer_read),
      lastMessage: { mid: row.mid, from: row.sender, to: row.recipient, ts: Number(row.ts), ...preview(row.msg) },
    }))
  }

  async history(uid: string, peer: string, before: string | null, limit: number): Promise<StoredMessage[]> {
    const bound = String(before === null ? MAX_MID : midBound(before))
    const { rows } = await this.pool.query<MessageRow>({ ...this.sql.history, values: [uid, peer, bound, limit] })
    return rows.map(toMessage)
  }

  async userMessages(uid: string, afterMid: string, limit: number): Promise<StoredMessage[]> {
    const values = [uid, String(midBound(afterMid)), limit]
    const { rows } = await this.pool.query<MessageRow>({ ...this.sql.userMessages, values })
    return rows.map(toMessage)
  }

  async eraseUser(uid: string): Promise<number> {
    // A transaction per chunk keeps each one's row locks short, as a purge does.
    let erased = 0
    for (const statement of [this.sql.eraseReceived, this.sql.eraseSent]) {
      for (;;) {
        const changes = await this.deleteChunk({ ...statement, values: [uid, ERASE_CHUNK] })
        erased += changes
        if (changes < ERASE_CHUNK) break
      }
    }
    return erased
  }

  async purgeBefore(ts: number, signal?: AbortSignal): Promise<number> {
    // Chunks keep each transaction, and the row locks it holds, short.
    let removed = 0
    for (;;) {
      const changes = await this.deleteChunk({ ...this.sql.purgeChunk, values: [ts, PURGE_CHUNK] })
      removed += changes
      if (changes < PURGE_CHUNK || this.closed || signal?.aborted === true) return removed
    }
  }

  /** One delete statement in a transaction of its own, behind the write batches' lock. */
  private async deleteChunk(query: QueryConfig): Promise<number> {
    const client = await this.pool.connect()
    try {
      await client.query('BEGIN')
      await client.query(this.sql.lockSeq)
      const result = await client.query(query)
      await client.query('COMMIT')
      client.release()
      return result.rowCount ?? 0
    } catch (error) {
      const rolledBack = await client.query('ROLLBACK').then(
        () => true,
        () => false,
      )
      client.release(!rolledBack)
      throw error
    }
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1')
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.batcher.drain()
    await this.pool.end()
  }

  private enqueue<R>(build: (resolve: (value: R) => void, fail: (error: unknown) => void) => PgWrite): Promise<R> {
    if (this.closed) return Promise.reject(new Error('postgres store is closed'))
    return new Promise<R>((resolve, reject) => this.batcher.push(build(resolve, reject)))
  }

  private async commitBatch(batch: PgWrite[]): Promise<void> {
    const client = await this.pool.connect()
    let committing = false
    try {
      await client.query('BEGIN')
      const settle = await this.applyBatch(client, batch)
      committing = true
      await client.query('COMMIT')
      client.release()
      settle()
    } catch (error) {
      if (committing) {
        // The outcome of a failed COMMIT may be unknown: report it rather than write twice.
        client.release(true)
        for (const write of batch) write.fail(error)
        return
      }
      const rolledBack = await client.query('ROLLBACK').then(
        () => true,
        () => false,
      )
      client.release(!rolledBack)
      if (batch.length === 1) return batch[0]!.fail(error)
      // Nothing committed: replay each write alone, in order, so only a bad one fails.
      this.logger?.warn({ err: error, size: batch.length }, 'postgres batch failed; replaying its writes one by one')
      for (const write of batch) await this.commitBatch([write]).catch((e: unknown) => write.fail(e))
    }
  }

  /** Runs the batch's writes in submission order; returns what settles them after COMMIT. */
  private async applyBatch(client: PoolClient, batch: PgWrite[]): Promise<() => void> {
    const appendCount = batch.filter((write) => write.kind === 'append').length
    // Taken even when there is nothing to append: the row lock is what orders batches.
    const seq = await client.query<{ v: string }>({ ...this.sql.takeMids, values: [appendCount] })
    let nextMid = BigInt(seq.rows[0]!.v) - BigInt(appendCount) + 1n
    const ts = Date.now()
    const settlers: Array<() => void> = []
    let run: AppendWrite[] = []
    const insertPendingRun = async (): Promise<void> => {
      if (run.length === 0) return
      settlers.push(await this.insertRun(client, run, nextMid, ts))
      nextMid += BigInt(run.length)
      run = []
    }
    for (const write of batch) {
      if (write.kind === 'append') {
        run.push(write)
        continue
      }
      await insertPendingRun()
      if (write.kind === 'markRead') {
        const result = await client.query({ ...this.sql.markRead, values: [write.uid, write.peer] })
        const changed = result.rowCount ?? 0
        settlers.push(() => write.resolve(changed))
      } else {
        if (write.kind === 'markDelivered') await client.query({ ...this.sql.markDelivered, values: [write.uid, write.mids] })
        else await client.query({ ...this.sql.setDelivered, values: [write.uid, write.mid, write.delivered] })
        settlers.push(() => write.resolve())
      }
    }
    await insertPendingRun()
    return () => {
      for (const settle of settlers) settle()
    }
  }

  /** Inserts consecutive appends with mids firstMid, firstMid+1, ...; a (sender, recipient, ref) already stored is a duplicate. */
  private async insertRun(client: PoolClient, run: AppendWrite[], firstMid: bigint, ts: number): Promise<() => void> {
    const mids = run.map((_, i) => String(firstMid + BigInt(i)))
    const inputs = run.map((write) => write.input)
    const { rows } = await client.query<{ mid: string }>({
      ...this.sql.insert,
      values: [
        mids,
        inputs.map((m) => m.from),
        inputs.map((m) => m.to),
        inputs.map((m) => m.msg),
        inputs.map(() => ts),
        inputs.map((m) => m.read),
        inputs.map((m) => m.delivered),
        inputs.map((m) => m.ref ?? null),
      ],
    })
    const inserted = new Set(rows.map((row) => row.mid))
    await this.outbox.insertEvents(
      client,
      mids.filter((mid, i) => inputs[i]!.offlineEvent === true && inserted.has(mid)),
      ts,
    )
    const duplicates = inputs.filter((_, i) => !inserted.has(mids[i]!))
    const stored = new Map<string, StoredMessage>()
    if (duplicates.length > 0) {
      const found = await client.query<MessageRow & { ref: string }>({
        ...this.sql.byRefs,
        values: [duplicates.map((m) => m.from), duplicates.map((m) => m.to), duplicates.map((m) => m.ref ?? '')],
      })
      for (const row of found.rows) stored.set(refKey(row.sender, row.recipient, row.ref), toMessage(row))
    }
    return () =>
      run.forEach((write, i) => {
        const { from, to, msg, read, ref } = write.input
        if (inserted.has(mids[i]!)) return write.resolve({ message: { mid: mids[i]!, from, to, msg, ts, read }, duplicate: false })
        const message = stored.get(refKey(from, to, ref ?? ''))
        if (message) write.resolve({ message, duplicate: true })
        else write.fail(new Error('append conflicted on (sender, recipient, ref) but no row was found'))
      })
  }
}

const refKey = (from: string, to: string, ref: string): string => `${from}\u0000${to}\u0000${ref}`
