// The webhook outbox of every store: the shared contract (outbox-contract.ts) for memory,
// SQLite (a temp file) and PostgreSQL (a schema of its own, dropped after), then what is
// particular to each: claims from two PostgreSQL nodes at once, a lease running out between
// them, and SQLite releasing at open the leases its previous run left. Time is the `now`
// passed to claim: no sleeps.
import { mkdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import t, { type Test } from 'tap'
import { MemoryMessageStore } from '../../src/store/memory-store.js'
import type { MessageStore } from '../../src/store/message-store.js'
import { migratePostgres } from '../../src/store/migrations/postgres.js'
import { migrateSqlite } from '../../src/store/migrations/sqlite.js'
import type { OutboxEvent } from '../../src/store/outbox.js'
import { PostgresMessageStore } from '../../src/store/postgres-store.js'
import { SqliteMessageStore } from '../../src/store/sqlite-store.js'
import { dropSchema, freshSchema, PG_URL, withPgClient } from '../helpers/postgres.js'
import { eventMessage, offline, outboxContract } from './outbox-contract.js'

const root = await mkdtemp(join(tmpdir(), 'duet-outbox-'))
t.teardown(() => rm(root, { recursive: true, force: true }))
let dbCount = 0
const freshPath = (): string => join(root, `db${++dbCount}`, 'duet.db')

const openPg = (schema: string): Promise<PostgresMessageStore> => new PostgresMessageStore({ url: PG_URL, schema }).start()

const FOREVER = 1e15

outboxContract('memory', async () => new MemoryMessageStore())
outboxContract('sqlite file', async () => new SqliteMessageStore({ path: freshPath() }))

t.test('sqlite: reopening the file releases the leases of the previous open', async (t) => {
  const path = freshPath()
  const first = new SqliteMessageStore({ path })
  const stored = []
  for (let i = 0; i < 4; i++) stored.push((await first.append(offline('a', 'b', { msg: `m${i}` }))).message)
  const T = Date.now()
  const claimed = await first.outbox.claim('dead-run', 10, T, FOREVER)
  t.equal(claimed.length, 4)
  const byMid = new Map(claimed.map((e) => [e.message.mid, e]))
  const [sent, failed, later, leased] = stored.map((m) => byMid.get(m.mid)!) as [OutboxEvent, OutboxEvent, OutboxEvent, OutboxEvent]
  await first.outbox.settle('dead-run', [{ id: sent.id, kind: 'sent', at: T + 1 }])
  await first.outbox.settle('dead-run', [{ id: failed.id, kind: 'failed', at: T + 2, error: 'HTTP 404' }])
  await first.outbox.settle('dead-run', [{ id: later.id, kind: 'retry', at: T + 3, error: 'HTTP 503', retryAt: T + 1000 }])
  t.same(await first.outbox.claim('other', 10, T + 10, FOREVER), [], 'before the reopen, the lease holds')
  await first.close()

  const second = new SqliteMessageStore({ path })
  t.teardown(() => second.close())
  t.equal(await second.outbox.pendingCount(), 2, 'the retrying and the leased events are still pending')
  const now = await second.outbox.claim('next-run', 10, T + 10, FOREVER)
  t.same(
    now.map((e) => e.id),
    [leased.id],
    'the event leased by the previous run is due again, untried; the retrying one waits for its time',
  )
  t.equal(now[0]!.attempts, 0)
  t.same(now[0]!.message, eventMessage(stored[3]!))
  const retried = await second.outbox.claim('next-run', 10, T + 1000, FOREVER)
  t.same(
    retried.map((e) => [e.id, e.attempts]),
    [[later.id, 1]],
  )
  const failedList = await second.outbox.failed(null, 10)
  t.same(
    failedList.map((e) => [e.id, e.attempts, e.lastError, e.lastAttemptAt]),
    [[failed.id, 1, 'HTTP 404', T + 2]],
    'a failed event stays failed',
  )
  t.equal(await second.outbox.retry(sent.id, T + 2000), 'not-failed', 'a sent event stays sent')
  // The old run's settle of its lost lease is ignored.
  await second.outbox.settle('dead-run', [{ id: leased.id, kind: 'sent', at: T + 20 }])
  t.equal(await second.outbox.pendingCount(), 2)
})

t.test('sqlite: a lease held by this open is not released by its own claims', async (t) => {
  const store = new SqliteMessageStore({ path: freshPath() })
  t.teardown(() => store.close())
  await store.append(offline('a', 'b'))
  const T = Date.now()
  t.equal((await store.outbox.claim('one', 10, T, T + 100)).length, 1)
  t.same(await store.outbox.claim('two', 10, T + 99, T + 200), [])
  t.equal((await store.outbox.claim('two', 10, T + 100, T + 200)).length, 1)
})

/**
 * After a migration that added the outbox to a store holding a→b "ancient" (ts 1000) and c→d
 * "older" (ts 2000): events can be added for the old messages, and go with them (purge, erase).
 */
async function oldMessagesGetEvents(t: Test, store: MessageStore, purgeNote: string): Promise<void> {
  const [ancient, older] = [...(await store.since('b', '0', 10)), ...(await store.since('d', '0', 10))]
  t.same([ancient?.msg, older?.msg], ['ancient', 'older'])
  await store.outbox.add(ancient!)
  await store.outbox.add(older!)
  const fresh = (await store.append(offline('e', 'f'))).message
  t.equal(fresh.mid, '3')
  t.equal(await store.outbox.pendingCount(), 3)
  const events = await store.outbox.claim('w', 10, Date.now(), FOREVER)
  t.same(
    events.map((e) => e.message).sort((x, y) => Number(x.mid) - Number(y.mid)),
    [eventMessage(ancient!), eventMessage(older!), eventMessage(fresh)],
  )
  t.equal(await store.purgeBefore(1500), 1, purgeNote)
  t.equal(await store.eraseUser('c'), 1)
  t.equal(await store.outbox.pendingCount(), 1)
  await store.outbox.release('w')
  t.same(
    (await store.outbox.claim('w', 10, Date.now(), FOREVER)).map((e) => e.message.mid),
    [fresh.mid],
  )
}

t.test('sqlite: migration 6 on a file of version 5: events for the old messages, gone with them', async (t) => {
  const path = freshPath()
  mkdirSync(dirname(path), { recursive: true })
  const old = new Database(path)
  migrateSqlite(old, 5)
  const insert = old.prepare('INSERT INTO duet_messages (sender, recipient, msg, ts, read, delivered, ref) VALUES (?, ?, ?, ?, 0, 1, NULL)')
  insert.run('a', 'b', 'ancient', 1000)
  insert.run('c', 'd', 'older', 2000)
  old.close()

  const store = new SqliteMessageStore({ path })
  t.teardown(() => store.close())
  await oldMessagesGetEvents(t, store, 'the trigger of migration 6 covers the messages stored before it')
})

const reachable = await withPgClient((c) => c.query('SELECT 1')).then(
  () => true,
  () => false,
)

if (!reachable && process.env.DUET_TEST_PG_URL === undefined) {
  t.comment(`PostgreSQL not reachable at ${PG_URL}; its outbox tests are skipped`)
} else {
  outboxContract(
    'postgres',
    async () => openPg(freshSchema()),
    async (store: MessageStore) => {
      await store.close()
      await dropSchema((store as PostgresMessageStore).schema)
    },
  )

  /** Two nodes on one new schema; both closed and the schema dropped at teardown. */
  async function twoNodes(t: { teardown(fn: () => unknown): void }): Promise<[PostgresMessageStore, PostgresMessageStore]> {
    const schema = freshSchema()
    t.teardown(() => dropSchema(schema))
    const one = await openPg(schema)
    t.teardown(() => one.close())
    const two = await openPg(schema)
    t.teardown(() => two.close())
    return [one, two]
  }

  t.test('postgres: two nodes claiming at once never get the same event, and together get all', async (t) => {
    const [one, two] = await twoNodes(t)
    const total = 200
    const appends = []
    for (let i = 0; i < total; i++) appends.push((i % 2 ? one : two).append(offline(`s${i % 7}`, `r${i % 5}`, { msg: `m${i}` })))
    const stored = await Promise.all(appends)
    t.equal(await one.outbox.pendingCount(), total)
    const T = Date.now()

    // Four claimers, two on each node, each taking 1 to 3 at a time until nothing is due; half
    // the events they get are sent at once, the others stay leased.
    const got = new Map<string, string[]>()
    const worker = async (store: PostgresMessageStore, claim: string): Promise<void> => {
      const mine: string[] = []
      got.set(claim, mine)
      for (let round = 0; ; round++) {
        const events = await store.outbox.claim(claim, 1 + (round % 3), T, FOREVER)
        if (events.length === 0) return
        for (const event of events) {
          mine.push(event.id)
          if (mine.length % 2 === 0) await store.outbox.settle(claim, [{ id: event.id, kind: 'sent', at: T + 1 }])
        }
      }
    }
    await Promise.all([worker(one, 'one-a'), worker(two, 'two-a'), worker(one, 'one-b'), worker(two, 'two-b')])

    const all = [...got.values()].flat()
    t.equal(all.length, total, 'as many claims as events')
    t.equal(new Set(all).size, total, 'no event claimed twice')
    t.ok(
      [...got.values()].filter((ids) => ids.length > 0).length >= 2,
      'more than one claimer got events',
    )
    const sentCount = [...got.values()].reduce((n, ids) => n + Math.floor(ids.length / 2), 0)
    t.equal(await two.outbox.pendingCount(), total - sentCount, 'every send settled once')
    t.same(await one.outbox.claim('late', 1000, T + 1, FOREVER), [], 'nothing left due: the unsent ones are still leased')
    // Every stored message has its one event among them.
    const byMid = new Set(stored.map((r) => r.message.mid))
    const released = await (async () => {
      for (const claim of got.keys()) await (claim.startsWith('one') ? one : two).outbox.release(claim)
      return one.outbox.claim('check', 1000, T + 2, FOREVER)
    })()
    t.equal(released.length, total - sentCount, 'the leased ones are given back')
    t.ok(
      released.every((e) => byMid.has(e.message.mid)),
      'each for a stored message',
    )
  })

  t.test('postgres: a lease that ran out on one node goes to the other; the late settle is ignored', async (t) => {
    const [one, two] = await twoNodes(t)
    const { message } = await one.append(offline('a', 'b'))
    await two.append(offline('c', 'd'))
    const T = Date.now()
    const first = await one.outbox.claim('node-one', 1, T, T + 30_000)
    t.equal(first.length, 1)
    const event = first[0]!
    const other = await two.outbox.claim('node-two', 10, T + 29_999, T + 60_000)
    t.equal(other.length, 1, 'the other event only, while the lease holds')
    t.not(other[0]!.id, event.id)
    await two.outbox.settle('node-two', [{ id: other[0]!.id, kind: 'sent', at: T + 30_000 }])

    const taken = await two.outbox.claim('node-two', 10, T + 30_000, T + 60_000)
    t.same(
      taken.map((e) => e.id),
      [event.id],
      'node one "died": at its lease end node two claims the event',
    )
    t.equal(taken[0]!.attempts, 0)
    t.same(taken[0]!.message, eventMessage(message))

    await one.outbox.settle('node-one', [{ id: event.id, kind: 'failed', at: T + 30_001, error: 'late' }])
    t.same(await two.outbox.failed(null, 10), [], "node one's late failure is ignored")
    await one.outbox.settle('node-one', [{ id: event.id, kind: 'sent', at: T + 30_001 }])
    t.equal(await two.outbox.pendingCount(), 1, "node one's late success is ignored too")
    await one.outbox.release('node-one')
    t.same(await one.outbox.claim('node-one', 10, T + 30_002, T + 60_000), [], "node one's release does not free node two's lease")

    await two.outbox.settle('node-two', [{ id: event.id, kind: 'retry', at: T + 30_010, error: 'HTTP 500', retryAt: T + 31_000 }])
    const again = await one.outbox.claim('node-one', 10, T + 31_000, T + 61_000)
    t.same(
      again.map((e) => [e.id, e.attempts]),
      [[event.id, 1]],
      "node two's settle counted: one try, due at its retry time",
    )
  })

  t.test('postgres: migration 4 on a schema of version 3: events for the old messages, gone with them', async (t) => {
    const schema = freshSchema()
    t.teardown(() => dropSchema(schema))
    await withPgClient(async (c) => {
      await migratePostgres(c, schema, 3)
      await c.query(
        `INSERT INTO "${schema}".duet_messages (mid, sender, recipient, msg, ts, read, delivered)
         VALUES (1, 'a', 'b', 'ancient', 1000, false, true), (2, 'c', 'd', 'older', 2000, false, true)`,
      )
      await c.query(`UPDATE "${schema}".duet_seq SET v = 2`)
    })
    const store = await openPg(schema)
    t.teardown(() => store.close())
    await oldMessagesGetEvents(t, store, 'the cascade covers the messages stored before migration 4')
  })

  t.test('postgres: events written by one node are visible to the other, and erased with their message there', async (t) => {
    const [one, two] = await twoNodes(t)
    await one.append(offline('a', 'b'))
    const kept = (await one.append(offline('c', 'd'))).message
    const T = Date.now()
    t.equal(await two.outbox.pendingCount(), 2)
    t.equal(await two.eraseUser('a'), 1)
    const left = await one.outbox.claim('x', 10, T, FOREVER)
    t.same(
      left.map((e) => e.message),
      [eventMessage(kept)],
    )
  })
}
