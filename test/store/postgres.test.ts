// Runs against DUET_TEST_PG_URL (default: the local test database). Every store gets its
// own schema, dropped afterwards, so test files can run in parallel on one database.
import t from 'tap'
import { createMessageStore } from '../../src/store/create-store.js'
import type { MessageStore } from '../../src/store/message-store.js'
import { PostgresMessageStore } from '../../src/store/postgres-store.js'
import { msg, storeContract } from './contract.js'
import { dropSchema, freshSchema, PG_URL, withPgClient } from '../helpers/postgres.js'

const url = PG_URL
const admin = withPgClient

const open = async (schema: string): Promise<PostgresMessageStore> => new PostgresMessageStore({ url, schema }).start()

/** A store on a new schema; closes it and drops the schema at teardown. */
async function openFresh(t: { teardown(fn: () => unknown): void }, schema = freshSchema()): Promise<PostgresMessageStore> {
  t.teardown(() => dropSchema(schema))
  const store = await open(schema)
  t.teardown(() => store.close())
  return store
}

const reachable = await admin((c) => c.query('SELECT 1')).then(
  () => true,
  () => false,
)

if (!reachable && process.env.DUET_TEST_PG_URL === undefined) {
  t.plan(0, `PostgreSQL not reachable at ${url}; set DUET_TEST_PG_URL to run these tests`)
} else {
  storeContract(
    'postgres',
    async () => open(freshSchema()),
    async (store: MessageStore) => {
      await store.close()
      await dropSchema((store as PostgresMessageStore).schema)
    },
  )

  t.test('postgres: two nodes writing at once keep mids in commit order', async (t) => {
    const schema = freshSchema()
    t.teardown(() => dropSchema(schema))
    // Started together: the migrations race under the advisory lock.
    const [one, two] = await Promise.all([open(schema), open(schema)])
    t.teardown(async () => {
      await one.close()
      await two.close()
    })

    // A reader follows the inbox with `since` while both nodes write: if a batch could
    // commit after a higher mid was visible, the reader would step over it for good.
    const seen: string[] = []
    let writing = true
    const follow = (async () => {
      let cursor = '0'
      for (;;) {
        const last = !writing
        const page = await one.since('b', cursor, 1000)
        for (const m of page) seen.push(m.mid)
        if (page.length > 0) cursor = page[page.length - 1]!.mid
        if (last && page.length === 0) return
      }
    })()
    const rounds = 20
    const sent: string[] = []
    for (let r = 0; r < rounds; r++) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? one : two).append(msg(`s${i % 5}`, 'b', { msg: `${r}:${i}` }))),
      )
      sent.push(...batch.map((x) => x.message.mid))
    }
    writing = false
    await follow

    const all = (await two.since('b', '0', 10_000)).map((m) => m.mid)
    t.equal(all.length, rounds * 50)
    t.same([...all].sort(), [...sent].sort(), 'every append stored once')
    t.same(seen, all, 'the follower saw every message, in order, none skipped')
    t.ok(
      all.every((mid, i) => i === 0 || BigInt(all[i - 1]!) < BigInt(mid)),
      'strictly increasing',
    )
  })

  t.test('postgres: the same ref on two nodes at once is stored once', async (t) => {
    const schema = freshSchema()
    t.teardown(() => dropSchema(schema))
    const one = await open(schema)
    const two = await open(schema)
    t.teardown(async () => {
      await one.close()
      await two.close()
    })
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).append(msg('a', 'b', { ref: 'r', msg: 'once' }))),
    )
    t.equal(new Set(results.map((r) => r.message.mid)).size, 1)
    t.equal(results.filter((r) => !r.duplicate).length, 1)
    t.equal((await one.since('b', '0', 10)).length, 1)
  })

  t.test('postgres: data survives reopening; migrations run again harmlessly', async (t) => {
    const schema = freshSchema()
    const first = await openFresh(t, schema)
    const sent = await first.append(msg('a', 'b'))
    await first.close()
    const again = await openFresh(t, schema)
    t.same(
      (await again.since('b', '0', 10)).map((m) => m.mid),
      [sent.message.mid],
    )
    const next = await again.append(msg('a', 'b'))
    t.ok(BigInt(next.message.mid) > BigInt(sent.message.mid))
    await t.rejects(first.append(msg('a', 'b')), /closed/)
  })

  t.test('postgres: text with NUL is refused before it can fail a batch', async (t) => {
    const store = await openFresh(t)
    const results = await Promise.allSettled([
      store.append(msg('a', 'b', { msg: 'fine' })),
      store.append(msg('a', 'b', { msg: 'bad\u0000' })),
      store.append(msg('a', 'b', { msg: 'also fine' })),
    ])
    t.same(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    )
  })

  t.test('postgres: createMessageStore honours ?schema= in the URL', async (t) => {
    const schema = freshSchema()
    t.teardown(() => dropSchema(schema))
    const store = await createMessageStore(`${url}?schema=${schema}`)
    t.teardown(() => store.close())
    t.equal(store.kind, 'postgres')
    t.equal((store as PostgresMessageStore).schema, schema)
    await store.append(msg('a', 'b'))
    const rows = await admin((c) => c.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".duet_messages`))
    t.equal(rows.rows[0]?.n, 1)
  })
}
