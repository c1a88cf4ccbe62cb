// SQLite's conversation table (migration 5): written once a second or before a read, it says
// what the messages say after appends, deletes by anyone and purges; an export and an erase
// find the partners noted and not yet written; what a killed run noted and an older duet's
// inserts are caught up when the store opens; a page of the list is one index range.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import Database from 'better-sqlite3'
import t from 'tap'
import type { Logger } from '../../src/logger.js'
import type { AppendResult, NewMessage } from '../../src/store/message-store.js'
import { CONVERSATION_PAGE, CONVERSATIONS_ABOVE } from '../../src/store/sqlite-conversations.js'
import { prepareStatements } from '../../src/store/sqlite-statements.js'
import { SqliteMessageStore } from '../../src/store/sqlite-store.js'

const root = await mkdtemp(join(tmpdir(), 'duet-sqlite-conv-'))
t.teardown(() => rm(root, { recursive: true, force: true }))
let count = 0
const freshPath = (): string => join(root, `db${++count}.db`)
const HOUR = 3_600_000

const msg = (from: string, to: string, text = `${from}->${to}`): NewMessage => ({ from, to, msg: text, read: false, delivered: false })

type Row = { owner: string; peer: string; last_mid: number }

/** The table, and the same rows computed from the messages, in one order. */
function tableAndTruth(path: string): { table: Row[]; truth: Row[] } {
  const db = new Database(path, { readonly: true })
  try {
    const order = 'ORDER BY owner, peer'
    return {
      table: db.prepare<[], Row>(`SELECT owner, peer, last_mid FROM duet_conversations ${order}`).all(),
      truth: db.prepare<[{ covered: number }], Row>(`SELECT * FROM (${CONVERSATIONS_ABOVE}) ${order}`).all({ covered: 0 }),
    }
  } finally {
    db.close()
  }
}

t.test('the table says what the messages say after appends, deletes by anyone, and purges', async (t) => {
  const path = freshPath()
  // Appends' conversations are written when something reads the list, never by the clock here.
  const store = new SqliteMessageStore({ path, conversationWriteMs: HOUR })
  t.teardown(() => store.close())
  const users = ['a', 'b', 'c', 'd', 'e']
  let seed = 7
  const random = (n: number): number => {
    seed = (seed * 48271) % 2147483647
    return seed % n
  }
  // Batches of concurrent appends: a conversation written several times in one batch.
  const appendRounds = async (rounds: number): Promise<void> => {
    for (let round = 0; round < rounds; round++) {
      await Promise.all(Array.from({ length: 40 }, () => store.append(msg(users[random(5)]!, users[random(5)]!))))
    }
  }
  await appendRounds(10)
  t.same(tableAndTruth(path).table, [], 'noted, not yet written')
  const check = async (label: string): Promise<void> => {
    await store.conversations('a', null, 1) // a reader of the list: it writes what was noted first
    const { table, truth } = tableAndTruth(path)
    t.ok(table.length > 0, `${label}: conversations left`)
    t.same(table, truth, label)
  }
  await check('after appends')

  // More appends, noted only; then another writer deletes rows, the newest of some of those
  // conversations among them (its trigger sets them from the table, which is behind).
  await appendRounds(3)
  const other = new Database(path)
  other.exec(`DELETE FROM duet_messages WHERE mid % 3 = 0 OR mid IN (SELECT max(mid) FROM duet_messages GROUP BY sender, recipient LIMIT 4)`)
  other.close()
  await check('after deletes by another writer of messages noted and not yet written')

  const last = await store.append(msg('a', 'b'))
  while (Date.now() <= last.message.ts) continue // what follows is stored a millisecond later
  await store.append(msg('c', 'd'))
  t.ok((await store.purgeBefore(last.message.ts + 1)) > 0)
  await check('after a purge')
  t.same(
    (await store.conversations('a', null, 10)).map((c) => c.peer),
    [],
    'a purged conversation is gone from the list',
  )
  t.same(
    (await store.conversations('c', null, 10)).map((c) => c.peer),
    ['d'],
  )
})

t.test('conversations are written once a second, in the batch due then', async (t) => {
  const path = freshPath()
  const store = new SqliteMessageStore({ path, conversationWriteMs: 50 })
  t.teardown(() => store.close())
  await store.append(msg('a', 'b'))
  t.same(tableAndTruth(path).table, [], 'the first batch only notes its conversation')
  const started = Date.now()
  while (Date.now() - started < 60) continue // the interval has passed
  await store.append(msg('c', 'd'))
  const { table, truth } = tableAndTruth(path)
  t.same(table, truth, 'the batch due writes every conversation noted so far')
})

t.test('a batch that rolls back keeps the conversations noted before it', async (t) => {
  const path = freshPath()
  const store = new SqliteMessageStore({ path, conversationWriteMs: HOUR })
  t.teardown(() => store.close())
  const first = await store.append(msg('a', 'b'))
  const bad = { ...msg('a', 'x'), to: null as unknown as string } // violates NOT NULL: the batch is replayed
  // The sent head reads the table: the batch writes it before the bad write rolls all back.
  const results = await Promise.allSettled([store.append(msg('c', 'a')), store.sentHeadMid('a'), store.append(bad), store.append(msg('a', 'd'))])
  t.same(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
  )
  t.same((results[1] as PromiseFulfilledResult<string>).value, first.message.mid, 'the sent head saw the earlier batch')
  t.same(
    (await store.conversations('a', null, 10)).map((c) => [c.peer, c.lastMessage.mid]),
    [
      ['d', (results[3] as PromiseFulfilledResult<AppendResult>).value.message.mid],
      ['c', (results[0] as PromiseFulfilledResult<AppendResult>).value.message.mid],
      ['b', first.message.mid],
    ],
  )
  const { table, truth } = tableAndTruth(path)
  t.same(table, truth)
})

t.test('an export and an erase find the partners noted and not yet written', async (t) => {
  const store = new SqliteMessageStore({ path: freshPath(), conversationWriteMs: HOUR })
  t.teardown(() => store.close())
  await Promise.all(['p1', 'p2', 'p3'].map((peer) => store.append(msg('a', peer))))
  await store.append(msg('p4', 'a'))
  t.same(
    (await store.userMessages('a', '0', 10)).map((m) => [m.from, m.to]),
    [
      ['a', 'p1'],
      ['a', 'p2'],
      ['a', 'p3'],
      ['p4', 'a'],
    ],
  )
  await store.append(msg('a', 'p5')) // noted after the export wrote the others
  t.equal(await store.eraseUser('a'), 5)
  t.same(await store.userMessages('a', '0', 10), [])
  t.same(await store.conversations('p5', null, 10), [])
})

// Appends a message a millisecond from a rotation of users until killed, printing each acked
// mid; its conversations are never written by the clock.
const CHILD = `
const { SqliteMessageStore } = await import(process.argv[1])
const store = new SqliteMessageStore({ path: process.argv[2], conversationWriteMs: 3600000 })
const users = ['a', 'b', 'c', 'd']
for (let i = 0; ; i++) {
  const { message } = await store.append({ from: users[i % 4], to: users[(i >> 2) % 4], msg: 'm' + i, read: false, delivered: false })
  process.stdout.write(message.mid + '\\n')
}
`

t.test('conversations noted by a run that was killed are caught up when the store opens', async (t) => {
  const path = freshPath()
  const storeModule = new URL('../../src/store/sqlite-store.js', import.meta.url).href
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, storeModule, path], { stdio: ['ignore', 'pipe', 'inherit'] })
  let acked = 0
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      acked += chunk.split('\n').length - 1
      if (acked >= 100 && !child.killed) child.kill('SIGKILL')
    })
    child.on('error', reject)
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited early: code ${code}`))))
  })
  t.same(tableAndTruth(path).table, [], 'the killed run wrote none of its conversations')

  const warnings: unknown[][] = []
  const logger = { warn: (...args: unknown[]) => warnings.push(args) } as unknown as Logger
  const store = new SqliteMessageStore({ path, logger })
  t.teardown(() => store.close())
  t.match(warnings, [[{ messages: Number }, /conversation list was behind the messages/]])
  t.ok((warnings[0]![0] as { messages: number }).messages >= 100)
  const { table, truth } = tableAndTruth(path)
  t.equal(table.length, 16, 'every pair of the four users, both ways and to themselves')
  t.same(table, truth)
})

t.test("an older duet's inserts are found when the store opens, and the table caught up", async (t) => {
  const path = freshPath()
  const first = new SqliteMessageStore({ path })
  await first.append(msg('a', 'b'))
  await first.close()

  // What a version without migration 5's writes does: insert, and delete (the trigger runs).
  const older = new Database(path)
  const insert = older.prepare(`INSERT INTO duet_messages (sender, recipient, msg, ts, read, delivered) VALUES (?, ?, 'x', 1, 0, 1)`)
  insert.run('c', 'a')
  insert.run('a', 'b')
  const newest = Number(insert.run('a', 'b').lastInsertRowid)
  older.prepare('DELETE FROM duet_messages WHERE mid = ?').run(newest)
  older.close()

  const warnings: string[] = []
  const logger = { warn: (...args: unknown[]) => warnings.push(String(args.at(-1))) } as unknown as Logger
  const store = new SqliteMessageStore({ path, logger })
  t.teardown(() => store.close())
  t.match(warnings, [/conversation list was behind the messages/])
  t.same(tableAndTruth(path).table, tableAndTruth(path).truth)
  t.same(
    (await store.conversations('a', null, 10)).map((c) => c.peer),
    ['b', 'c'],
  )
  await store.close()
  const again = new SqliteMessageStore({ path, logger })
  await again.close()
  t.equal(warnings.length, 1, 'a table that agrees is left alone')
})

t.test('a page is one range of the (owner, last_mid) index, whatever the number of partners', async (t) => {
  const path = freshPath()
  const store = new SqliteMessageStore({ path })
  t.teardown(() => store.close())
  // 3000 partners, in batches: the list of 'u' is long.
  for (let i = 0; i < 3000; i += 500) {
    await Promise.all(Array.from({ length: 500 }, (_, j) => store.append(msg(`p${i + j}`, 'u', 'x'.repeat(4000)))))
  }
  const db = new Database(path)
  t.teardown(() => db.close())
  db.exec('ANALYZE') // the planner's choice with statistics, as a long-running file has them
  const plan = db
    .prepare<[{ uid: string; before: bigint; limit: number }], { detail: string }>(`EXPLAIN QUERY PLAN ${CONVERSATION_PAGE}`)
    .all({ uid: 'u', before: 1n << 62n, limit: 51 })
    .map((row) => row.detail)
  t.match(plan[0], /^SEARCH c USING COVERING INDEX duet_conversations_recent \(owner=\? AND last_mid<\?\)$/)
  t.notOk(
    plan.some((step) => /SCAN|TEMP B-TREE/.test(step)),
    `no scan and no sort: ${plan.join('; ')}`,
  )
  const page = await store.conversations('u', null, 200)
  t.equal(page.length, 200)
  t.ok(
    page.every((c) => c.lastMessage.msg.length === 200 && c.lastMessage.truncated),
    'previews only',
  )
})

t.test("peer marks and the carbons replay go down indexes, however many partners and messages", async (t) => {
  const path = freshPath()
  const store = new SqliteMessageStore({ path })
  t.teardown(() => store.close())
  // 2000 partners, and a long conversation with one.
  for (let i = 0; i < 2000; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => store.append(msg('u', `p${i + j}`))))
  for (let i = 0; i < 1000; i += 500) await Promise.all(Array.from({ length: 500 }, () => store.append(msg('u', 'v'))))
  const db = new Database(path)
  t.teardown(() => db.close())
  db.exec('ANALYZE')
  const statements = prepareStatements(db)
  const plan = (name: 'peerMarks' | 'sentSince' | 'sentHead', params: Record<string, unknown>): string[] =>
    db
      .prepare<[Record<string, unknown>], { detail: string }>(`EXPLAIN QUERY PLAN ${statements[name].source}`)
      .all(params)
      .map((row) => row.detail)
  const marks = plan('peerMarks', { uid: 'u', peer: 'v' })
  t.ok(
    marks.filter((step) => step.startsWith('SEARCH duet_messages')).every((step) => /duet_messages_recipient_pair \(recipient=\? AND sender=\? AND mid[<>]\?\)/.test(step)),
    `peer marks: from the read mark up the pair index, or one seek down from it (${marks.join('; ')})`,
  )
  t.notOk(marks.some((step) => /SCAN duet|TEMP B-TREE/.test(step)), 'peer marks: no scan, no sort')
  const since = plan('sentSince', { uid: 'u', after: 100n, limit: 500 })
  t.ok(since.includes('SEARCH c USING COVERING INDEX duet_conversations_recent (owner=? AND last_mid>?)'), since.join('; '))
  t.ok(since.includes('SEARCH m USING COVERING INDEX duet_messages_recipient_pair (recipient=? AND sender=? AND mid>?)'))
  t.notOk(since.some((step) => /SCAN/.test(step)), 'sentSince: no scan (the sort is of the page)')
  const head = plan('sentHead', { uid: 'u' })
  t.notOk(head.some((step) => /SCAN|TEMP B-TREE/.test(step)), `sentHead: a seek per partner (${head.join('; ')})`)
  t.equal(await store.sentHeadMid('u'), '3000')
  t.equal((await store.sentSince('u', '2990', 500)).length, 10)
})
