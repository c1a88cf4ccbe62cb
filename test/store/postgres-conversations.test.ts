// PostgreSQL's conversation table (migration 3): filled from the messages of an older schema,
// kept by its triggers whoever writes (two nodes, a node of the previous version, a delete,
// a purge), and a page of the list is one index range.
import t from 'tap'
import { migratePostgres } from '../../src/store/migrations/postgres.js'
import { PostgresMessageStore } from '../../src/store/postgres-store.js'
import { statements } from '../../src/store/postgres-statements.js'
import { msg } from './contract.js'
import { dropSchema, freshSchema, PG_URL, withPgClient } from '../helpers/postgres.js'

const reachable = await withPgClient((c) => c.query('SELECT 1')).then(
  () => true,
  () => false,
)

type Row = { owner: string; peer: string; last_mid: string }

/** The table, and the same rows computed from the messages, in one order. */
const tableAndTruth = (schema: string): Promise<{ table: Row[]; truth: Row[] }> =>
  withPgClient(async (c) => {
    const s = `"${schema}"`
    const table = await c.query<Row>(`SELECT owner, peer, last_mid FROM ${s}.duet_conversations ORDER BY owner, peer`)
    const truth = await c.query<Row>(
      `SELECT owner, peer, max(mid) AS last_mid FROM (
         SELECT recipient AS owner, sender AS peer, mid FROM ${s}.duet_messages
         UNION ALL SELECT sender, recipient, mid FROM ${s}.duet_messages WHERE sender <> recipient
       ) sides GROUP BY owner, peer ORDER BY owner, peer`,
    )
    return { table: table.rows, truth: truth.rows }
  })

async function openFresh(t: { teardown(fn: () => unknown): void }, schema: string): Promise<PostgresMessageStore> {
  const store = await new PostgresMessageStore({ url: PG_URL, schema }).start()
  t.teardown(() => store.close())
  return store
}

if (!reachable && process.env.DUET_TEST_PG_URL === undefined) {
  t.plan(0, `PostgreSQL not reachable at ${PG_URL}; set DUET_TEST_PG_URL to run these tests`)
} else {
  t.test('postgres: migration 3 fills the table from the messages already stored', async (t) => {
    const schema = freshSchema()
    t.teardown(() => dropSchema(schema))
    await withPgClient(async (c) => {
      await migratePostgres(c, schema, 2)
      await c.query(
        `INSERT INTO "${schema}".duet_messages (mid, sender, recipient, msg, ts, read, delivered)
         VALUES (1, 'a', 'b', 'one', 1, false, true), (2, 'c', 'a', 'two', 2, false, true),
                (3, 'a', 'b', 'three', 3, true, true), (4, 'a', 'a', 'note', 4, false, true)`,
      )
      await c.query(`UPDATE "${schema}".duet_seq SET v = 4`)
    })
    const store = await openFresh(t, schema)
    t.same(
      (await store.conversations('a', null, 10)).map((c) => [c.peer, c.lastMessage.msg, c.unread]),
      [
        ['a', 'note', 1],
        ['b', 'three', 0],
        ['c', 'two', 1],
      ],
    )
    const { table, truth } = await tableAndTruth(schema)
    t.same(table, truth)
  })

  t.test('postgres: the table says what the messages say, whoever writes', async (t) => {
    const schema = freshSchema()
    t.teardown(() => dropSchema(schema))
    const [one, two] = [await openFresh(t, schema), await openFresh(t, schema)]
    const users = ['a', 'b', 'c', 'd', 'e']
    let seed = 11
    const random = (n: number): number => {
      seed = (seed * 48271) % 2147483647
      return seed % n
    }
    // Two nodes at once, batches writing a conversation several times.
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        Array.from({ length: 60 }, (_, i) => (i % 2 ? one : two).append(msg(users[random(5)]!, users[random(5)]!))),
      )
    }
    const check = async (label: string): Promise<void> => {
      const { table, truth } = await tableAndTruth(schema)
      t.ok(table.length > 0, `${label}: conversations left`)
      t.same(table, truth, label)
    }
    await check('after two nodes wrote')

    // A node of the previous version inserts with its own statement; anyone may delete.
    await withPgClient(async (c) => {
      const s = `"${schema}"`
      await c.query(
        `INSERT INTO ${s}.duet_messages (mid, sender, recipient, msg, ts, read, delivered)
         SELECT v + 1, 'e', 'z', 'from an older node', 1, false, true FROM ${s}.duet_seq`,
      )
      await c.query(`UPDATE ${s}.duet_seq SET v = v + 1`)
      await c.query(
        `DELETE FROM ${s}.duet_messages WHERE mid % 4 = 0
           OR mid IN (SELECT max(mid) FROM ${s}.duet_messages GROUP BY sender, recipient LIMIT 5)`,
      )
    })
    await check('after an older node inserted and rows were deleted')
    t.same(
      (await one.conversations('z', null, 10)).map((c) => c.peer),
      ['e'],
    )

    const last = await one.append(msg('a', 'b'))
    while (Date.now() <= last.message.ts) continue // what follows is stored a millisecond later
    await two.append(msg('c', 'd'))
    t.ok((await one.purgeBefore(last.message.ts + 1)) > 0)
    await check('after a purge')
    t.same(
      (await two.conversations('c', null, 10)).map((c) => c.peer),
      ['d'],
    )
  })

  t.test('postgres: a page is one range of the (owner, last_mid) index, whatever the number of partners', async (t) => {
    const schema = freshSchema()
    t.teardown(() => dropSchema(schema))
    const store = await openFresh(t, schema)
    for (let i = 0; i < 3000; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => store.append(msg(`p${i + j}`, 'u', { msg: 'x'.repeat(4000) }))))
    }
    // Other users' newer traffic: a plan that walked the messages would cross it.
    await Promise.all(Array.from({ length: 500 }, (_, i) => store.append(msg(`q${i}`, `r${i}`))))
    const plan = await withPgClient(async (c) => {
      await c.query(`ANALYZE "${schema}".duet_messages; ANALYZE "${schema}".duet_conversations`)
      const { rows } = await c.query<{ 'QUERY PLAN': string }>({
        text: `EXPLAIN ${statements(schema).conversations.text}`,
        values: ['u', '9223372036854775807', 51],
      })
      return rows.map((row) => row['QUERY PLAN']).join('\n')
    })
    t.match(plan, /Index Scan Backward using duet_conversations_recent on duet_conversations/)
    t.match(plan, /Index Scan using duet_messages_pkey/)
    t.notMatch(plan, /Seq Scan|Sort/, plan)
    const page = await store.conversations('u', null, 200)
    t.equal(page.length, 200)
    t.ok(
      page.every((c) => c.lastMessage.msg.length === 200 && c.lastMessage.truncated),
      'previews only',
    )
  })

  t.test('postgres: peer marks and the carbons replay go down indexes, however many partners and messages', async (t) => {
    const schema = freshSchema()
    t.teardown(() => dropSchema(schema))
    const store = await openFresh(t, schema)
    for (let i = 0; i < 2000; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => store.append(msg('u', `p${i + j}`))))
    for (let i = 0; i < 1000; i += 500) await Promise.all(Array.from({ length: 500 }, () => store.append(msg('u', 'v'))))
    await Promise.all(Array.from({ length: 500 }, (_, i) => store.append(msg(`q${i}`, `r${i}`))))
    const sql = statements(schema)
    const plans = await withPgClient(async (c) => {
      await c.query(`ANALYZE "${schema}".duet_messages; ANALYZE "${schema}".duet_conversations`)
      const explain = async (text: string, values: unknown[]): Promise<string> =>
        (await c.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN ${text}`, values })).rows.map((row) => row['QUERY PLAN']).join('\n')
      return {
        marks: await explain(sql.peerMarks.text, ['u', 'v']),
        since: await explain(sql.sentSince.text, ['u', '100', 500]),
        head: await explain(sql.sentHead.text, ['u']),
      }
    })
    // Within one pair (an index range of either pair index) and one seek per partner: never a
    // walk of the messages. (Which pair index, and whether the conversations table is read by
    // its index or whole, is the planner's call on the statistics: here u owns most of it.)
    t.match(plans.marks, /duet_messages_(recipient|sender)_pair/, plans.marks)
    t.notMatch(plans.marks, /Seq Scan/, plans.marks)
    t.match(plans.since, /Index Only Scan using duet_messages_recipient_pair/, plans.since)
    t.notMatch(plans.since, /Seq Scan on duet_messages/, plans.since)
    t.match(plans.head, /duet_messages_(recipient|sender)_pair/, plans.head)
    t.notMatch(plans.head, /Seq Scan on duet_messages/, plans.head)
    t.equal(await store.sentHeadMid('u'), '3000')
    t.equal((await store.sentSince('u', '2990', 500)).length, 10)
  })
}
