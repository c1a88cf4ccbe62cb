import { spawn } from 'node:child_process'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { mkdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import type { NewMessage } from '../../src/store/message-store.js'
import { migrateSqlite } from '../../src/store/migrations/sqlite.js'
import { SQLITE_BATCH_CHANNEL, type SqliteBatchTiming } from '../../src/store/sqlite-batch-channel.js'
import { SqliteMessageStore } from '../../src/store/sqlite-store.js'
import type { WalSync } from '../../src/store/wal-sync.js'
import { storeContract } from './contract.js'

const root = await mkdtemp(join(tmpdir(), 'duet-sqlite-'))
t.teardown(() => rm(root, { recursive: true, force: true }))
let dbCount = 0
// A directory that does not exist yet: the store must create it.
const freshPath = (): string => join(root, `db${++dbCount}`, 'duet.db')

const msg = (from: string, to: string, text: string): NewMessage => ({ from, to, msg: text, read: false, delivered: false })

storeContract('sqlite file', async () => new SqliteMessageStore({ path: freshPath() }))
storeContract('sqlite :memory:', async () => new SqliteMessageStore({ path: ':memory:' }))

t.test('sqlite: everything acked is there after close and reopen', async (t) => {
  const path = freshPath()
  const first = new SqliteMessageStore({ path })
  const sent = await Promise.all([1, 2, 3].map((i) => first.append(msg('a', 'b', `m${i}`))))
  await first.append(msg('c', 'b', 'unread'))
  await first.markRead('b', 'a')
  const pending = first.append(msg('a', 'b', 'queued when close was called'))
  await first.close()
  await pending

  const second = new SqliteMessageStore({ path })
  t.teardown(() => second.close())
  const inbox = await second.since('b', '0', 10)
  t.same(
    inbox.map((m) => [m.msg, m.read]),
    [
      ['m1', true],
      ['m2', true],
      ['m3', true],
      ['unread', false],
      ['queued when close was called', false],
    ],
  )
  t.equal(inbox[0]!.mid, sent[0]!.message.mid)
  t.equal(await second.unreadCount('b', 'c'), 1)
  const next = await second.append(msg('a', 'b', 'after reopen'))
  t.ok(BigInt(next.message.mid) > BigInt(inbox[inbox.length - 1]!.mid))
  await t.rejects(first.append(msg('a', 'b', 'too late')), /closed/)
})

t.test('sqlite: two stores on one file migrate once and share the data', async (t) => {
  const path = freshPath()
  const one = new SqliteMessageStore({ path })
  const two = new SqliteMessageStore({ path })
  t.teardown(async () => {
    await one.close()
    await two.close()
  })
  const [a, b] = await Promise.all([one.append(msg('a', 'b', 'one')), two.append(msg('a', 'b', 'two'))])
  t.not(a.message.mid, b.message.mid)
  t.same((await one.since('b', '0', 10)).map((m) => m.msg).sort(), ['one', 'two'])
})

t.test('sqlite: a failing write fails alone, its batch neighbours commit', async (t) => {
  const store = new SqliteMessageStore({ path: freshPath() })
  t.teardown(() => store.close())
  const bad = { ...msg('a', 'b', 'bad'), to: null as unknown as string } // violates NOT NULL
  const results = await Promise.allSettled([
    store.append(msg('a', 'b', 'before')),
    store.append(bad),
    store.markRead('b', 'a'),
    store.append(msg('a', 'b', 'after')),
  ])
  t.same(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
  )
  t.same(
    (await store.since('b', '0', 10)).map((m) => [m.msg, m.read]),
    [
      ['before', true],
      ['after', false],
    ],
  )
})

// The child appends as fast as it can and prints each mid once its append resolved; it is
// killed mid-stream. Every mid it printed must be in the file: an ack means committed.
const CHILD = `
const { SqliteMessageStore } = await import(process.argv[1])
const store = new SqliteMessageStore({ path: process.argv[2] })
for (let round = 0; ; round++) {
  await Promise.all(Array.from({ length: 25 }, (_, i) =>
    store.append({ from: 'a', to: 'b', msg: 'r' + round + 'm' + i, read: false, delivered: false })
      .then(({ message }) => process.stdout.write(message.mid + '\\n'))))
}
`

t.test('sqlite: every acked append survives SIGKILL', async (t) => {
  const path = freshPath()
  const storeModule = new URL('../../src/store/sqlite-store.js', import.meta.url).href
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, storeModule, path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const acked: string[] = []
  await new Promise<void>((resolve, reject) => {
    let partial = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n')
      partial = lines.pop() ?? ''
      acked.push(...lines)
      if (acked.length >= 500 && !child.killed) child.kill('SIGKILL')
    })
    child.on('error', reject)
    child.on('exit', (code, signal) =>
      signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited early: code ${code}`)),
    )
  })
  const store = new SqliteMessageStore({ path })
  t.teardown(() => store.close())
  const stored = new Set((await store.since('b', '0', 1_000_000)).map((m) => m.mid))
  t.ok(acked.length >= 500)
  t.same(
    acked.filter((mid) => !stored.has(mid)),
    [],
    'no acked message was lost',
  )
})

t.test('sqlite: a version-1 database keeps its messages, read state and refs through the later migrations', async (t) => {
  const path = freshPath()
  mkdirSync(dirname(path), { recursive: true })
  const old = new Database(path)
  migrateSqlite(old, 1)
  const insert = old.prepare(
    'INSERT INTO duet_messages (sender, recipient, msg, ts, read, delivered, ref) VALUES (?, ?, ?, ?, ?, 1, ?)',
  )
  insert.run('a', 'b', 'read', 1, 1, 'r1')
  insert.run('a', 'b', 'unread', 2, 0, 'r2')
  insert.run('b', 'c', 'sent', 3, 0, null)
  old.close()

  const store = new SqliteMessageStore({ path })
  t.teardown(() => store.close())
  t.same(
    (await store.since('b', '0', 10)).map((m) => [m.msg, m.read]),
    [
      ['read', true],
      ['unread', false],
    ],
  )
  t.equal(await store.headMid('b'), '2')
  t.same((await store.since('b', '1', 10)).map((m) => m.msg), ['unread'])
  t.equal(await store.unreadCount('b', 'a'), 1)
  t.same(
    (await store.conversations('b', null, 10)).map((c) => [c.peer, c.unread]),
    [
      ['c', 0],
      ['a', 1],
    ],
  )
  const resend = await store.append({ ...msg('a', 'b', 'unread'), ref: 'r2' })
  t.equal(resend.duplicate, true, 'a ref stored before the migration still deduplicates')
  t.equal(await store.markRead('b', 'a'), 1)
  t.equal(await store.unreadCount('b', 'a'), 0)
  await store.close()
  const migrated = new Database(path, { readonly: true })
  t.teardown(() => migrated.close())
  t.equal(migrated.pragma('user_version', { simple: true }), 6)
  t.same(
    migrated.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'duet_messages' ORDER BY name`).pluck().all(),
    ['duet_messages_recipient_pair', 'duet_messages_sender_ref', 'duet_messages_undelivered'],
    'an insert writes two indexes, and the partial one only for a message not pushed',
  )
})

t.test('sqlite: a purge that empties a conversation takes its read mark too', async (t) => {
  const path = freshPath()
  const store = new SqliteMessageStore({ path })
  t.teardown(() => store.close())
  const old = await store.append(msg('a', 'b', 'old'))
  await store.markRead('b', 'a')
  while (Date.now() <= old.message.ts) continue // the kept message must be stored a millisecond later
  await store.append(msg('c', 'b', 'kept'))
  await store.markRead('b', 'c')
  const marks = (): Array<{ owner: string; peer: string }> => {
    const db = new Database(path, { readonly: true })
    try {
      return db.prepare('SELECT owner, peer FROM duet_read_marks ORDER BY peer').all() as Array<{ owner: string; peer: string }>
    } finally {
      db.close()
    }
  }
  t.same(marks(), [
    { owner: 'b', peer: 'a' },
    { owner: 'b', peer: 'c' },
  ])
  t.equal(await store.purgeBefore(old.message.ts + 1), 1)
  t.same(marks(), [{ owner: 'b', peer: 'c' }], 'the emptied conversation lost its mark, the other kept it')
  await store.append(msg('a', 'b', 'new'))
  t.equal(await store.unreadCount('b', 'a'), 1)
})

t.test('sqlite: the recovery reads never name a message before its fdatasync is done', async (t) => {
  const store = new SqliteMessageStore({ path: freshPath() })
  t.teardown(() => store.close())
  // Hold every fdatasync's answer until release: the rows are committed, not yet durable.
  const walSync = (store as unknown as { walSync: WalSync }).walSync
  const afterCommit = walSync.afterCommit.bind(walSync)
  let release!: () => void
  const synced = new Promise<void>((resolve) => (release = resolve))
  let committed!: () => void
  const commit = new Promise<void>((resolve) => (committed = resolve))
  walSync.afterCommit = (done) => {
    committed() // the append and the reads, submitted together, share one commit
    afterCommit((error) => void synced.then(() => done(error)))
  }
  const appended = store.append(msg('a', 'b', 'not yet durable'))
  let answered = 0
  const reads = [store.headMid('b'), store.since('b', '0', 10), store.undelivered('b', 10)].map((read) =>
    read.then((value) => {
      answered++
      return value
    }),
  )
  await commit
  await new Promise((resolve) => setImmediate(resolve)) // whatever could answer now has
  t.equal(answered, 0, 'no read answers while the row is not durable')
  release()
  const { message } = await appended
  const [head, since, undelivered] = await Promise.all(reads)
  t.equal(head, message.mid)
  t.same([since, undelivered].map((list) => (list as Array<{ mid: string }>).map((m) => m.mid)), [[message.mid], [message.mid]])
})

t.test('sqlite: after a failed fdatasync the store stops: no write is acknowledged until a restart', async (t) => {
  const store = new SqliteMessageStore({ path: freshPath() })
  t.teardown(() => store.close().catch(() => undefined))
  await store.append(msg('a', 'b', 'before'))
  ;(store as unknown as { walSync: WalSync }).walSync.close() // its descriptor is gone: fdatasync fails with EBADF
  await t.rejects(store.append(msg('a', 'b', 'lost sync')), { cause: { code: 'EBADF' } })
  await t.rejects(store.append(msg('a', 'b', 'after')), /store stopped after a failed WAL fdatasync/, 'later writes fail at once')
  await t.rejects(store.markRead('b', 'a'), /store stopped/)
  await t.rejects(store.purgeBefore(Date.now()), /store stopped/, 'retention does not write either')
  await t.rejects(store.ping(), /store stopped/, 'and /readyz says so')
})

t.test('sqlite: a read in the same batch as appends finds their conversations', async (t) => {
  const store = new SqliteMessageStore({ path: freshPath() })
  t.teardown(() => store.close())
  // One batch: appends to partners x never wrote to, then the reads of what x sent (the
  // carbons' replay), which go through the conversation list. This store runs those reads in
  // the write queue, after the writes submitted before them (PostgreSQL reads at once).
  const [sent, head, since] = await Promise.all([
    Promise.all(Array.from({ length: 20 }, (_, i) => store.append(msg('x', `p${i}`, `m${i}`)))),
    store.sentHeadMid('x'),
    store.sentSince('x', '0', 100),
  ])
  t.equal(head, sent.at(-1)!.message.mid)
  t.same(
    since.map((m) => m.mid),
    sent.map((r) => r.message.mid),
  )
})

/**
 * The file a killed server leaves: these rows (sender, recipient, text, ms from now, pushed)
 * and its run still recorded as running. Returns the database's path.
 */
function crashedWith(rows: Array<[string, string, string, number, boolean]>): string {
  const path = freshPath()
  mkdirSync(dirname(path), { recursive: true })
  const crashed = new Database(path)
  migrateSqlite(crashed)
  const insert = crashed.prepare(
    'INSERT INTO duet_messages (sender, recipient, msg, ts, read, delivered, ref) VALUES (?, ?, ?, ?, 0, ?, NULL)',
  )
  const now = Date.now()
  for (const [from, to, text, offset, pushed] of rows) insert.run(from, to, text, now + offset, +pushed)
  crashed.prepare(`INSERT INTO duet_meta (key, value) VALUES ('run', 'running')`).run()
  crashed.close()
  return path
}

t.test('sqlite: after a run that never closed, the pushes of its last seconds are pushed again', async (t) => {
  const path = crashedWith([
    ['a', 'b', 'pushed a minute before', -60_000, true],
    ['a', 'b', 'pushed just before', -2_000, true],
    ['a', 'c', 'never pushed', -1_000, false],
    ['c', 'b', 'pushed last', 0, true],
  ])
  const store = new SqliteMessageStore({ path })
  t.same((await store.undelivered('b', 10)).map((m) => m.msg), ['pushed just before', 'pushed last'])
  t.same((await store.undelivered('c', 10)).map((m) => m.msg), ['never pushed'])
  await store.markDelivered('b', (await store.undelivered('b', 10)).map((m) => m.mid))
  await store.close()

  // A clean stop: the next run pushes nothing again.
  const reopened = new SqliteMessageStore({ path })
  t.teardown(() => reopened.close())
  t.same(await reopened.undelivered('b', 10), [])
})

t.test('sqlite: a clock set back before the crash does not widen what is pushed again', async (t) => {
  const path = crashedWith([
    ['a', 'b', 'long before', -3_600_000, true],
    ['a', 'b', 'before the clock went back an hour', 3_600_000 - 5_000, true],
    ['a', 'b', 'after it', -1_000, true],
    ['a', 'b', 'newest', 0, true],
  ])
  const store = new SqliteMessageStore({ path })
  t.teardown(() => store.close())
  t.same((await store.undelivered('b', 10)).map((m) => m.msg), ['after it', 'newest'])
})

t.test('sqlite: while someone subscribes, each batch says where its writes spent their time', async (t) => {
  const store = new SqliteMessageStore({ path: freshPath() })
  t.teardown(() => store.close())
  await store.append(msg('a', 'b', 'before anyone listens'))
  const seen: SqliteBatchTiming[] = []
  const listener = (message: unknown): void => void seen.push(message as SqliteBatchTiming)
  subscribe(SQLITE_BATCH_CHANNEL, listener)
  // The first write opens a batch; the three behind it wait for its fdatasync and share the next.
  await Promise.all([store.append(msg('a', 'b', 'first')), ...[1, 2, 3].map((i) => store.append(msg('a', 'b', `m${i}`))), store.markRead('b', 'a')])
  unsubscribe(SQLITE_BATCH_CHANNEL, listener)
  await store.append(msg('a', 'b', 'after'))
  t.same(
    seen.map((batch) => batch.queuedMs.length).reduce((a, b) => a + b, 0),
    5,
    'every write of the window is in a batch, once; none from before or after',
  )
  for (const batch of seen) {
    t.ok(batch.commitMs >= 0 && batch.syncMs >= 0, 'commit and sync are durations')
    t.ok(batch.queuedMs.every((ms) => ms >= 0), 'so are the waits')
  }
})
