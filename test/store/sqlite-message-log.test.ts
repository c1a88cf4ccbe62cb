// The SQLite store's arrival log (migration 7): appends wait there, every other read or write
// of the store moves it first, a full log moves on its own, and a ref is found in either table.
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t, { type Test } from 'tap'
import type { MessageStore, NewMessage } from '../../src/store/message-store.js'
import { DIRECT_APPENDS, groupOf, MOVE_GROUPS, MOVE_ROWS } from '../../src/store/sqlite-message-log.js'
import { SqliteMessageStore } from '../../src/store/sqlite-store.js'

const root = await mkdtemp(join(tmpdir(), 'duet-sqlite-log-'))
t.teardown(() => rm(root, { recursive: true, force: true }))
let count = 0
const freshPath = (): string => join(root, `db${++count}.db`)

const msg = (from: string, to: string, text: string, ref?: string): NewMessage => ({
  from,
  to,
  msg: text,
  read: false,
  delivered: false,
  ...(ref === undefined ? {} : { ref }),
})

/** Rows in the log and in duet_messages, read by a connection of its own, as an operator's would. */
function counts(path: string): { log: number; messages: number } {
  const db = new Database(path, { readonly: true })
  try {
    const count = (table: string): number => db.prepare<[], number>(`SELECT count(*) FROM ${table}`).pluck().get()!
    return { log: count('duet_message_log'), messages: count('duet_messages') }
  } finally {
    db.close()
  }
}

// No timed move during a test: what moves the log is what the test does.
const NO_TIMED_MOVE = 3_600_000

function open(t: Test, path = freshPath()): SqliteMessageStore {
  const store = new SqliteMessageStore({ path, logMoveIntervalMs: NO_TIMED_MOVE })
  t.teardown(() => store.close())
  return store
}

// Each read of the store, and what it must find of two messages still in the log.
const READS: Array<[string, (store: MessageStore) => Promise<unknown>, unknown]> = [
  ['since', async (s) => (await s.since('b', '0', 10)).map((m) => m.msg), ['one', 'two']],
  ['headMid', (s) => s.headMid('b'), '2'],
  ['undelivered', async (s) => (await s.undelivered('b', 10)).length, 2],
  ['unreadCount', (s) => s.unreadCount('b', 'a'), 2],
  ['history', async (s) => (await s.history('a', 'b', null, 10)).map((m) => m.msg), ['two', 'one']],
  ['conversations', async (s) => (await s.conversations('a', null, 10)).map((c) => [c.peer, c.lastMessage.msg]), [['b', 'two']]],
  ['peerMarks', (s) => s.peerMarks('a', 'b'), { delivered: '0', read: '0' }],
  ['userMessages', async (s) => (await s.userMessages('a', '0', 10)).length, 2],
  ['sentSince', async (s) => (await s.sentSince('a', '0', 10)).length, 2],
  ['sentHeadMid', (s) => s.sentHeadMid('a'), '2'],
  ['markRead', (s) => s.markRead('b', 'a'), 2],
]

for (const [name, read, expected] of READS) {
  t.test(`${name} moves the log first and finds what it held`, async (t) => {
    const path = freshPath()
    const store = open(t, path)
    await store.append(msg('a', 'b', 'one'))
    await store.append(msg('a', 'b', 'two'))
    t.same(counts(path), { log: 2, messages: 0 }, 'acked appends wait in the log')
    t.same(await read(store), expected)
    t.same(counts(path), { log: 0, messages: 2 })
  })
}

t.test(`a log of ${MOVE_ROWS} rows moves its largest group with the batch that fills it, with no read`, async (t) => {
  const path = freshPath()
  const store = open(t, path)
  const group = 50 // appends per batch, fewer than DIRECT_APPENDS: they go to the log
  const senders = Array.from({ length: 12 }, (_, i) => `u${i}`)
  const sent: bigint[] = []
  for (let i = 0; i * group < MOVE_ROWS; i++) {
    const batch = await Promise.all(Array.from({ length: group }, (_, j) => store.append(msg(senders[j % senders.length]!, 'b', `m${i}.${j}`))))
    sent.push(...batch.map((r) => BigInt(r.message.mid)))
  }
  const sizes = Array.from({ length: MOVE_GROUPS }, (_, g) => sent.filter((_, i) => groupOf(senders[(i % group) % senders.length]!, 'b') === g).length)
  const largest = sizes.indexOf(Math.max(...sizes))
  t.ok(sizes.filter((size) => size > 0).length > 1, `the conversations fall into several groups: ${sizes.join(', ')}`)
  t.same(counts(path), { log: MOVE_ROWS - sizes[largest]!, messages: sizes[largest] }, 'the batch that filled the log moved its largest group')
  const db = new Database(path, { readonly: true })
  t.teardown(() => db.close())
  t.notOk(db.prepare('SELECT 1 FROM duet_message_log WHERE grp = ?').get(largest), 'all of it')
  t.same(sent, [...sent].sort((x, y) => (x < y ? -1 : 1)), 'mids in submission order')
  t.equal((await store.since('b', '0', 2 * MOVE_ROWS)).length, MOVE_ROWS)
  t.same(counts(path), { log: 0, messages: MOVE_ROWS }, 'a read moves every group')
})

t.test(`a batch of ${DIRECT_APPENDS} appends writes straight to the messages and leaves the log be`, async (t) => {
  const path = freshPath()
  const store = open(t, path)
  const logged = await store.append(msg('a', 'b', 'logged', 'r1'))
  const batch = await Promise.all([
    ...Array.from({ length: DIRECT_APPENDS }, (_, i) => store.append(msg(`u${i % 5}`, 'b', `m${i}`, `d${i}`))),
    store.append(msg('a', 'b', 'logged', 'r1')),
  ])
  t.same(counts(path), { log: 1, messages: DIRECT_APPENDS })
  t.same(batch.at(-1), { message: logged.message, duplicate: true }, 'a ref in the log is found')
  const mids = batch.slice(0, -1).map((r) => BigInt(r.message.mid))
  t.ok(mids.every((mid, i) => mid > BigInt(logged.message.mid) && (i === 0 || mid > mids[i - 1]!)), 'mids keep growing')
  t.equal((await store.append(msg('u3', 'b', 'again', 'd3'))).message.mid, batch[3]!.message.mid, 'a ref written straight is found')
  const db = new Database(path, { readonly: true })
  t.teardown(() => db.close())
  t.same(
    db.prepare("SELECT peer, last_mid FROM duet_conversations WHERE owner = 'b' ORDER BY peer").all(),
    ['u0', 'u1', 'u2', 'u3', 'u4'].map((peer) => ({
      peer,
      last_mid: Math.max(...batch.slice(0, -1).filter((r) => r.message.from === peer).map((r) => Number(r.message.mid))),
    })),
    'with their conversations (the logged one waits for its move)',
  )
  await store.unreadCount('b', 'a')
  t.same(counts(path), { log: 0, messages: DIRECT_APPENDS + 1 })
  const newestFirst = [logged, ...batch.slice(0, -1)]
    .sort((x, y) => Number(y.message.mid) - Number(x.message.mid))
    .map((r) => r.message.from)
    .filter((peer, i, all) => all.indexOf(peer) === i)
  t.same(
    (await store.conversations('b', null, 10)).map((c) => c.peer),
    newestFirst,
    'a log moved after newer rows leaves each conversation at its newest',
  )
})

t.test('a read in the same batch as a large batch of appends finds them, their conversations too', async (t) => {
  const store = open(t)
  const [sent, head, since] = await Promise.all([
    Promise.all(Array.from({ length: DIRECT_APPENDS }, (_, i) => store.append(msg('x', `p${i}`, `m${i}`)))),
    store.sentHeadMid('x'),
    store.sentSince('x', '0', 2 * DIRECT_APPENDS),
  ])
  t.equal(head, sent.at(-1)!.message.mid, 'sentHeadMid goes through the conversation list')
  t.equal(since.length, DIRECT_APPENDS)
})

t.test('a ref is found in the log, in the same batch, after the move, and after a reopen', async (t) => {
  const path = freshPath()
  const store = new SqliteMessageStore({ path, logMoveIntervalMs: NO_TIMED_MOVE })
  const first = await store.append(msg('a', 'b', 'hi', 'r1'))
  const inLog = await store.append(msg('a', 'b', 'hi again', 'r1'))
  t.same([inLog.duplicate, inLog.message], [true, first.message], 'from the log')
  const [x, y] = await Promise.all([store.append(msg('a', 'b', 'x', 'r2')), store.append(msg('a', 'b', 'x', 'r2'))])
  t.same([x.duplicate, y.duplicate, y.message.mid], [false, true, x.message.mid], 'from the same batch')
  t.equal((await store.append(msg('a', 'c', 'other peer', 'r1'))).duplicate, false, 'a ref is per conversation')
  await store.markRead('b', 'a')
  t.same(counts(path).log, 0)
  const moved = await store.append(msg('a', 'b', 'hi', 'r1'))
  t.same([moved.duplicate, moved.message.mid, moved.message.read], [true, first.message.mid, true], 'from duet_messages')
  await store.close()

  const reopened = open(t, path)
  t.equal((await reopened.append(msg('a', 'b', 'x', 'r2'))).message.mid, x.message.mid)
  t.equal((await reopened.since('b', '0', 10)).length, 2)
})

t.test('a batch that rolls back leaves the log as it was: its replay stores each write once', async (t) => {
  const path = freshPath()
  const store = open(t, path)
  const bad = { ...msg('a', 'b', 'bad'), to: null as unknown as string } // violates NOT NULL
  const [good, failed, again] = await Promise.allSettled([
    store.append(msg('a', 'b', 'good', 'g')),
    store.append(bad),
    store.append(msg('a', 'b', 'good', 'g')),
  ])
  t.equal(failed.status, 'rejected')
  if (good.status !== 'fulfilled' || again.status !== 'fulfilled') throw new Error('the good appends failed')
  t.same([again.value.duplicate, again.value.message.mid], [true, good.value.message.mid])
  t.same(counts(path), { log: 1, messages: 0 })
  const next = await store.append(msg('a', 'b', 'next'))
  t.ok(BigInt(next.message.mid) > BigInt(good.value.message.mid))
  t.same((await store.since('b', '0', 10)).map((m) => m.msg), ['good', 'next'])
})

t.test('two stores on one file: mids never collide and a ref sent through one is found by the other', async (t) => {
  const path = freshPath()
  const one = open(t, path)
  const two = open(t, path)
  const a = await one.append(msg('a', 'b', 'via one', 'r'))
  const b = await two.append(msg('a', 'b', 'via one', 'r'))
  t.same([b.duplicate, b.message.mid], [true, a.message.mid])
  const more = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? one : two).append(msg('c', 'd', `m${i}`))))
  t.equal(new Set(more.map((r) => r.message.mid)).size, 20)
  t.equal((await two.since('d', '0', 100)).length, 20)
  t.equal((await one.append(msg('a', 'b', 'after the other moved', 'r'))).message.mid, a.message.mid)
})

t.test('a purge of the newest messages never lets the log give their mids again', async (t) => {
  const path = freshPath()
  let store = new SqliteMessageStore({ path, logMoveIntervalMs: NO_TIMED_MOVE })
  const last = await store.append(msg('a', 'b', 'newest'))
  t.ok((await store.purgeBefore(last.message.ts + 1)) > 0)
  await store.close()
  store = open(t, path)
  const next = await store.append(msg('a', 'b', 'after the purge'))
  t.ok(BigInt(next.message.mid) > BigInt(last.message.mid))
})

t.test('a purge moves the log before each chunk: a message appended meanwhile keeps its conversation\'s read mark', async (t) => {
  const store = open(t)
  const old = await Promise.all(Array.from({ length: 2500 }, (_, i) => store.append(msg('a', 'b', `old ${i}`))))
  await store.markRead('b', 'a')
  const mark = old.at(-1)!.message.mid
  t.same(await store.peerMarks('a', 'b'), { delivered: mark, read: mark })
  while (Date.now() <= old.at(-1)!.message.ts) continue // what follows is stored a millisecond later
  // The first chunk runs at once; the append commits into the log while the purge yields.
  const purge = store.purgeBefore(old.at(-1)!.message.ts + 1)
  const fresh = await store.append(msg('a', 'b', 'new'))
  t.equal(await purge, 2500)
  t.same(await store.peerMarks('a', 'b'), { delivered: mark, read: mark }, 'the mark stays: the conversation has a message')
  t.equal(await store.unreadCount('b', 'a'), 1)
  t.same((await store.history('b', 'a', null, 10)).map((m) => m.mid), [fresh.message.mid])
})

// A child appends and is killed: what it acknowledged waits in the log, and the next open moves
// it into the messages and the conversation list before anything reads them.
const CHILD = `
const { SqliteMessageStore } = await import(process.argv[1])
const store = new SqliteMessageStore({ path: process.argv[2], logMoveIntervalMs: 3600000 })
const peers = ['b', 'c', 'd']
for (let i = 0; i < 30; i++) await store.append({ from: 'a', to: peers[i % 3], msg: 'm' + i, read: false, delivered: false, ref: 'r' + i })
process.stdout.write('acked\\n')
setInterval(() => {}, 1000)
`

t.test('a run killed with rows in the log: the next open moves them before any read', async (t) => {
  const path = freshPath()
  const storeModule = new URL('../../src/store/sqlite-store.js', import.meta.url).href
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, storeModule, path], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => {
      child.kill('SIGKILL')
      resolve()
    })
    child.on('error', reject)
  })
  await new Promise((resolve) => child.once('exit', resolve))
  t.same(counts(path), { log: 30, messages: 0 }, 'the killed run left its appends in the log')
  const store = open(t, path)
  t.same(counts(path), { log: 0, messages: 30 }, 'moved at open')
  const db = new Database(path, { readonly: true })
  t.teardown(() => db.close())
  t.same(
    db.prepare('SELECT peer, last_mid FROM duet_conversations WHERE owner = ? ORDER BY peer').all('a'),
    [
      { peer: 'b', last_mid: 28 },
      { peer: 'c', last_mid: 29 },
      { peer: 'd', last_mid: 30 },
    ],
    'with their conversations',
  )
  t.equal((await store.append(msg('a', 'b', 'm0', 'r0'))).duplicate, true)
  t.equal((await store.append(msg('a', 'b', 'new'))).message.mid, '31')
})
