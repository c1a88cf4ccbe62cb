// The MessageStore contract: every implementation runs this same suite (memory, SQLite,
// PostgreSQL). Each subtest gets a fresh, empty store from `make` and hands it to `destroy`.
import t from 'tap'
import type { StoredMessage } from '../../src/protocol/message.js'
import { PREVIEW_LENGTH } from '../../src/protocol/preview.js'
import { ERASE_CHUNK, type MessageStore, type NewMessage } from '../../src/store/message-store.js'

export type MakeStore = () => Promise<MessageStore>
export type DestroyStore = (store: MessageStore) => Promise<void>

interface Teardown {
  teardown(fn: () => unknown): void
}

/** A new message from `from` to `to`, unread and undelivered unless `extra` says otherwise. */
export const msg = (from: string, to: string, extra: Partial<NewMessage> = {}): NewMessage => ({
  from,
  to,
  msg: `${from}->${to}`,
  read: false,
  delivered: false,
  ...extra,
})

const mids = (messages: ReadonlyArray<{ mid: string }>): string[] => messages.map((m) => m.mid)

const isIncreasing = (list: string[]): boolean => list.every((mid, i) => i === 0 || BigInt(list[i - 1]!) < BigInt(mid))

/** Every conversation of `uid`: one page larger than any test makes. */
const allConversations = (store: MessageStore, uid: string) => store.conversations(uid, null, 1000)

/** A message as the conversation list shows it: no read flag, a text short enough not to be cut. */
const summary = ({ read: _read, ...rest }: StoredMessage) => ({ ...rest, truncated: false })

/** Walks `uid`'s conversations `limit` at a time, each page from the last one's newest mid. */
async function walk(store: MessageStore, uid: string, limit: number): Promise<{ peers: string[]; pages: number[] }> {
  const peers: string[] = []
  const pages: number[] = []
  let before: string | null = null
  for (;;) {
    const page = await store.conversations(uid, before, limit)
    if (page.length > 0) pages.push(page.length)
    peers.push(...page.map((c) => c.peer))
    if (page.length < limit) return { peers, pages }
    before = page[page.length - 1]!.lastMessage.mid
  }
}

export function storeContract(name: string, make: MakeStore, destroy: DestroyStore = (s) => s.close()): void {
  const open = async (t: Teardown): Promise<MessageStore> => {
    const store = await make()
    t.teardown(() => destroy(store))
    return store
  }

  t.test(`${name}: MessageStore contract`, async (t) => {
    t.test('append returns increasing mids as strings of digits', async (t) => {
      const store = await open(t)
      const results = []
      for (let i = 0; i < 5; i++) results.push(await store.append(msg('a', 'b', { msg: `m${i}`, read: i === 2 })))
      for (const [i, { message, duplicate }] of results.entries()) {
        t.match(message.mid, /^[1-9]\d*$/)
        t.equal(duplicate, false)
        t.match(message, { from: 'a', to: 'b', msg: `m${i}`, read: i === 2 })
        t.ok(Math.abs(message.ts - Date.now()) < 60_000, 'ts is server time in ms')
      }
      t.ok(isIncreasing(mids(results.map((r) => r.message))))
    })

    t.test('headMid is "0" with no messages, then the newest mid to that user', async (t) => {
      const store = await open(t)
      t.equal(await store.headMid('b'), '0')
      await store.append(msg('a', 'b'))
      const last = await store.append(msg('c', 'b'))
      await store.append(msg('b', 'a'))
      t.equal(await store.headMid('b'), last.message.mid)
      t.equal(await store.headMid('nobody'), '0')
    })

    t.test('since: ascending, only mids above the cursor, at most limit, read or not', async (t) => {
      const store = await open(t)
      const sent: StoredMessage[] = []
      for (let i = 0; i < 6; i++) {
        sent.push((await store.append(msg(i % 2 ? 'a' : 'c', 'b', { msg: `m${i}` }))).message)
        await store.append(msg('b', 'a', { msg: `noise${i}` }))
      }
      await store.markRead('b', 'a')
      const all = await store.since('b', '0', 100)
      t.same(mids(all), mids(sent))
      t.same(
        all.map((m) => m.read),
        sent.map((m) => m.from === 'a'),
        'read messages are replayed too',
      )
      t.same(mids(await store.since('b', sent[2]!.mid, 100)), mids(sent.slice(3)))
      t.same(mids(await store.since('b', sent[0]!.mid, 2)), mids(sent.slice(1, 3)))
      t.same(await store.since('b', sent[5]!.mid, 100), [])
      t.same(await store.since('b', '99999999999999999999999', 10), [], 'a cursor beyond every mid matches nothing')
    })

    t.test('since and headMid over many senders: every cursor and limit, in mid order', async (t) => {
      const store = await open(t)
      // Senders in an order unlike their names, the recipient among them, bursts of one sender.
      const senders = ['m', 'b', 'z', 'x', 'a', 'x', 'x', 'b', 'q', 'x', 'z', 'a', 'm', 'b']
      const inbox: StoredMessage[] = []
      const replies: StoredMessage[] = []
      for (const [i, from] of senders.entries()) {
        inbox.push((await store.append(msg(from, 'x', { msg: `m${i}` }))).message)
        replies.push((await store.append(msg('x', from === 'x' ? 'b' : from, { msg: `reply${i}` }))).message)
        t.equal(await store.headMid('x'), inbox[inbox.length - 1]!.mid, `headMid after message ${i}`)
      }
      // Cursors at x's own messages and between them (the mids of other users' messages).
      for (const cursor of ['0', ...mids(inbox), ...mids(replies)]) {
        const after = inbox.filter((m) => BigInt(m.mid) > BigInt(cursor))
        for (const limit of [1, 2, 3, 5, 100]) {
          t.same(mids(await store.since('x', cursor, limit)), mids(after.slice(0, limit)), `since ${cursor}, limit ${limit}`)
        }
      }
      t.same(
        (await store.since('x', inbox[3]!.mid, 2)).map((m) => m.msg),
        ['m4', 'm5'],
        'each mid comes with its own message',
      )
    })

    t.test('undelivered and markDelivered', async (t) => {
      const store = await open(t)
      const m1 = (await store.append(msg('a', 'b', { msg: '1' }))).message
      await store.append(msg('a', 'b', { msg: 'pushed', delivered: true }))
      const m3 = (await store.append(msg('c', 'b', { msg: '3' }))).message
      const m4 = (await store.append(msg('a', 'b', { msg: '4' }))).message
      const other = (await store.append(msg('a', 'x'))).message
      t.same(mids(await store.undelivered('b', 100)), [m1.mid, m3.mid, m4.mid])
      t.same(mids(await store.undelivered('b', 2)), [m1.mid, m3.mid])
      await store.markDelivered('b', [m3.mid])
      t.same(mids(await store.undelivered('b', 100)), [m1.mid, m4.mid], 'exactly the mids given, not those below')
      await store.markDelivered('b', [m1.mid, other.mid])
      t.same(mids(await store.undelivered('b', 100)), [m4.mid])
      t.same(mids(await store.undelivered('x', 100)), [other.mid], 'other recipients are untouched')
      await store.markDelivered('b', [m4.mid])
      t.same(await store.undelivered('b', 100), [])
      await store.markDelivered('b', [])
      await store.setDelivered('b', m3.mid, false)
      t.same(mids(await store.undelivered('b', 100)), [m3.mid], 'setDelivered false takes back exactly one')
      await store.setDelivered('x', m3.mid, false)
      t.same(mids(await store.undelivered('x', 100)), [other.mid], 'only for its recipient')
      await store.setDelivered('b', m1.mid, false)
      await store.setDelivered('b', m3.mid, true)
      t.same(mids(await store.undelivered('b', 100)), [m1.mid], 'setDelivered true marks exactly one, not the older ones')
      await store.setDelivered('x', m1.mid, true)
      t.same(mids(await store.undelivered('b', 100)), [m1.mid], 'only for its recipient')
    })

    t.test('append is idempotent by (from, to, ref)', async (t) => {
      const store = await open(t)
      const first = await store.append(msg('a', 'b', { ref: 'r1', msg: 'hello' }))
      const again = await store.append(msg('a', 'b', { ref: 'r1', msg: 'hello' }))
      t.equal(first.duplicate, false)
      t.equal(again.duplicate, true)
      t.same(again.message, first.message)
      const otherSender = await store.append(msg('c', 'b', { ref: 'r1' }))
      t.equal(otherSender.duplicate, false, 'refs are per sender')
      const otherPeer = await store.append(msg('a', 'c', { ref: 'r1' }))
      t.equal(otherPeer.duplicate, false, 'and per conversation: the same ref to another peer is a new message')
      const noRef1 = await store.append(msg('a', 'b'))
      const noRef2 = await store.append(msg('a', 'b'))
      t.not(noRef1.message.mid, noRef2.message.mid, 'no ref, no deduplication')
      t.equal((await store.since('b', '0', 100)).length, 4, 'the resend was stored once')
      t.equal((await store.since('c', '0', 100)).length, 1)
    })

    t.test('concurrent appends with the same ref store one message', async (t) => {
      const store = await open(t)
      const results = await Promise.all(
        Array.from({ length: 20 }, () => store.append(msg('a', 'b', { ref: 'same', msg: 'once' }))),
      )
      t.equal(new Set(results.map((r) => r.message.mid)).size, 1, 'one mid for all')
      t.equal(results.filter((r) => !r.duplicate).length, 1, 'exactly one was new')
      t.equal((await store.since('b', '0', 100)).length, 1)
      t.equal(await store.unreadCount('b', 'a'), 1)
    })

    t.test('per-pair order holds under many concurrent appends', async (t) => {
      const store = await open(t)
      const n = 600
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          i % 3 === 2 ? store.append(msg('b', 'a', { msg: String(i) })) : store.append(msg('a', 'b', { msg: String(i) })),
        ),
      )
      const toB = await store.since('b', '0', n)
      t.same(
        toB.map((m) => m.msg),
        results.filter((r) => r.message.to === 'b').map((r) => r.message.msg),
        'stored in submission order',
      )
      t.ok(isIncreasing(mids(toB)))
      t.ok(isIncreasing(mids(results.map((r) => r.message))), 'mids follow submission order')
      const history = await store.history('a', 'b', null, n)
      t.same(
        history.map((m) => m.msg),
        Array.from({ length: n }, (_, i) => String(n - 1 - i)),
      )
    })

    t.test('markRead and unreadCount', async (t) => {
      const store = await open(t)
      for (let i = 0; i < 3; i++) await store.append(msg('a', 'b'))
      await store.append(msg('a', 'b', { read: true }))
      await store.append(msg('c', 'b'))
      await store.append(msg('c', 'b'))
      await store.append(msg('b', 'a'))
      t.equal(await store.unreadCount('b', 'a'), 3)
      t.equal(await store.unreadCount('b', 'c'), 2)
      t.equal(await store.unreadCount('a', 'b'), 1)
      t.equal(await store.markRead('b', 'a'), 3)
      t.equal(await store.unreadCount('b', 'a'), 0)
      t.equal(await store.markRead('b', 'a'), 0, 'nothing left to change')
      t.equal(await store.unreadCount('b', 'c'), 2, 'other peers untouched')
      t.equal(await store.unreadCount('a', 'b'), 1, 'the other direction untouched')
      t.equal(await store.unreadCount('nobody', 'a'), 0)
    })

    t.test("peerMarks and the conversations' peerDelivered/peerRead: the peer's high-water marks, from the rows", async (t) => {
      const store = await open(t)
      const marks = async (uid: string, peer: string) => {
        const direct = await store.peerMarks(uid, peer)
        const row = (await allConversations(store, uid)).find((c) => c.peer === peer)
        t.same({ delivered: row?.peerDelivered, read: row?.peerRead }, direct, `the list agrees with peerMarks (${uid} → ${peer})`)
        return direct
      }
      t.same(await store.peerMarks('a', 'b'), { delivered: '0', read: '0' }, 'no conversation')
      const m1 = (await store.append(msg('a', 'b', { delivered: true }))).message.mid
      const m2 = (await store.append(msg('a', 'b'))).message.mid
      await store.append(msg('b', 'a', { delivered: true, read: true })) // the other direction counts for b only
      t.same(await marks('a', 'b'), { delivered: m1, read: '0' })
      await store.markDelivered('b', [m2])
      t.same(await marks('a', 'b'), { delivered: m2, read: '0' })
      await store.markRead('b', 'a')
      t.same(await marks('a', 'b'), { delivered: m2, read: m2 })
      // Stored undelivered and unread above the read mark: the marks stay where they were.
      const m3 = (await store.append(msg('a', 'b'))).message.mid
      t.same(await marks('a', 'b'), { delivered: m2, read: m2 })
      // Read on arrival (stored read) implies delivered.
      const m4 = (await store.append(msg('a', 'b', { read: true }))).message.mid
      t.same(await marks('a', 'b'), { delivered: m4, read: m4 })
      t.ok(BigInt(m3) < BigInt(m4))
      const back = await marks('b', 'a')
      t.same(back, { delivered: back.read, read: back.read }, 'b → a: stored read')
      t.not(back.read, '0')
      t.same(await store.peerMarks('a', 'nobody'), { delivered: '0', read: '0' })
    })

    t.test("the peer's marks name only stored messages: after a purge of the read one, the newest read one left, or 0", async (t) => {
      const store = await open(t)
      const m1 = await store.append(msg('a', 'b', { delivered: true }))
      await store.markRead('b', 'a')
      // The clock moves past each message's ts (a millisecond at most), so a purge can tell them apart.
      while (Date.now() <= m1.message.ts) continue
      const m2 = await store.append(msg('a', 'b', { delivered: true }))
      await store.markRead('b', 'a')
      while (Date.now() <= m2.message.ts) continue
      const m3 = await store.append(msg('a', 'b'))
      t.same(await store.peerMarks('a', 'b'), { delivered: m2.message.mid, read: m2.message.mid })
      t.equal(await store.purgeBefore(m2.message.ts), 1, 'm1 purged')
      t.same(await store.peerMarks('a', 'b'), { delivered: m2.message.mid, read: m2.message.mid }, 'm2 still stored and read')
      t.equal(await store.purgeBefore(m3.message.ts), 1, 'm2 purged')
      t.same(await store.peerMarks('a', 'b'), { delivered: '0', read: '0' }, 'the read ones are gone; m3 is neither')
      const row = (await allConversations(store, 'a')).find((c) => c.peer === 'b')
      t.same({ delivered: row?.peerDelivered, read: row?.peerRead }, { delivered: '0', read: '0' }, 'the list agrees')
      t.ok(BigInt(m1.message.mid) < BigInt(m2.message.mid))
    })

    t.test('sentSince and sentHeadMid: what a user sent, for carbons', async (t) => {
      const store = await open(t)
      t.equal(await store.sentHeadMid('a'), '0')
      const toB = (await store.append(msg('a', 'b'))).message.mid
      await store.append(msg('b', 'a'))
      const self = (await store.append(msg('a', 'a'))).message.mid
      const toC = (await store.append(msg('a', 'c'))).message.mid
      await store.append(msg('c', 'd'))
      const toB2 = (await store.append(msg('a', 'b'))).message.mid
      await store.append(msg('c', 'a'))
      t.equal(await store.sentHeadMid('a'), toB2)
      t.same(mids(await store.sentSince('a', '0', 10)), [toB, toC, toB2], 'ascending, not to itself, not received')
      t.same(mids(await store.sentSince('a', toB, 10)), [toC, toB2])
      t.same(mids(await store.sentSince('a', '0', 2)), [toB, toC], 'at most limit')
      t.same(await store.sentSince('a', toB2, 10), [])
      t.ok(BigInt(self) > BigInt(toB))
      t.same(await store.sentSince('nobody', '0', 10), [])
    })

    t.test('writes apply in submission order', async (t) => {
      const store = await open(t)
      const before = store.append(msg('a', 'b'))
      const read = store.markRead('b', 'a')
      const after = store.append(msg('a', 'b'))
      const [early, changed, late] = await Promise.all([before, read, after])
      t.equal(changed, 1, 'markRead saw the append submitted before it')
      t.equal(await store.unreadCount('b', 'a'), 1, 'and not the one submitted after it')
      const delivered = store.markDelivered('b', [early.message.mid, late.message.mid])
      const unpushed = store.append(msg('a', 'b'))
      await delivered
      t.same(mids(await store.undelivered('b', 10)), [(await unpushed).message.mid])
    })

    t.test('conversations: most recent first, with unread counts and the last message', async (t) => {
      const store = await open(t)
      await store.append(msg('a', 'b', { msg: 'first' }))
      const fromC = await store.append(msg('c', 'b', { msg: 'from c' }))
      const toD = await store.append(msg('b', 'd', { msg: 'to d' }))
      const lastA = await store.append(msg('a', 'b', { msg: 'again', read: true }))
      await store.append(msg('x', 'y'))
      t.same(await allConversations(store, 'b'), [
        { peer: 'a', unread: 1, peerDelivered: '0', peerRead: '0', lastMessage: summary(lastA.message) },
        { peer: 'd', unread: 0, peerDelivered: '0', peerRead: '0', lastMessage: summary(toD.message) },
        { peer: 'c', unread: 1, peerDelivered: '0', peerRead: '0', lastMessage: summary(fromC.message) },
      ])
      const reply = await store.append(msg('b', 'c', { msg: 'reply' }))
      const list = await allConversations(store, 'b')
      t.same(
        list.map((c) => c.peer),
        ['c', 'a', 'd'],
      )
      t.same(list[0]!.lastMessage, summary(reply.message))
      t.same(
        (await allConversations(store, 'd')).map((c) => [c.peer, c.unread]),
        [['b', 1]],
      )
      t.same(await allConversations(store, 'nobody'), [])
    })

    t.test('conversations: pages by last activity, every one once, ties in ts included', async (t) => {
      const store = await open(t)
      // 'u' writes to some partners, hears from others, notes to itself; then a burst of
      // concurrent messages, which share their ts (one batch, or one millisecond).
      const newest = new Map<string, string>()
      const note = (from: string, to: string, mid: string) => newest.set(from === 'u' ? to : from, mid)
      for (let i = 0; i < 14; i++) {
        const { message } = await store.append(i % 3 ? msg('u', `p${i}`) : msg(`p${i}`, 'u'))
        note(message.from, message.to, message.mid)
        if (i % 4 === 0) await store.append(msg(`p${i}`, 'x')) // other users' traffic between
      }
      note('u', 'u', (await store.append(msg('u', 'u'))).message.mid)
      const burst = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.append(i % 2 ? msg('u', `p${i % 14}`) : msg(`q${i}`, 'u'))),
      )
      for (const { message } of burst) note(message.from, message.to, message.mid)
      const byActivity = [...newest].sort(([, a], [, b]) => (BigInt(b) > BigInt(a) ? 1 : -1))
      const expected = byActivity.map(([peer]) => peer)

      const list = await allConversations(store, 'u')
      t.same(
        list.map((c) => [c.peer, c.lastMessage.mid]),
        byActivity,
        'ordered by the newest mid of each conversation',
      )
      const stamps = list.map((c) => c.lastMessage.ts)
      t.ok(new Set(stamps).size < stamps.length, 'some conversations tie on ts')
      for (const limit of [1, 2, 3, 7, expected.length, 100]) {
        const { peers, pages } = await walk(store, 'u', limit)
        t.same(peers, expected, `limit ${limit}: every conversation once, in order`)
        t.ok(
          pages.every((n) => n <= limit),
          `limit ${limit}: no page larger than the limit`,
        )
      }
      t.same(await store.conversations('u', list[list.length - 1]!.lastMessage.mid, 10), [], 'nothing after the oldest')
      t.same(await store.conversations('u', '0', 10), [])
      t.equal((await store.conversations('u', '99999999999999999999', 3)).length, 3, 'a cursor beyond every mid is the start')
    })

    t.test('conversations: a new message moves its conversation to the front', async (t) => {
      const store = await open(t)
      for (const peer of ['a', 'b', 'c', 'd', 'e']) await store.append(msg(peer, 'u'))
      const first = await store.conversations('u', null, 2)
      t.same(
        first.map((c) => c.peer),
        ['e', 'd'],
      )
      await store.append(msg('b', 'u', { msg: 'news from b' }))
      const rest = await store.conversations('u', first[1]!.lastMessage.mid, 10)
      t.same(
        rest.map((c) => c.peer),
        ['c', 'a'],
        'the next page neither repeats nor shows b again: it moved ahead of the cursor',
      )
      t.same(
        (await store.conversations('u', null, 2)).map((c) => [c.peer, c.lastMessage.msg]),
        [
          ['b', 'news from b'],
          ['e', 'e->u'],
        ],
      )
      await store.append(msg('u', 'a', { msg: 'a reply moves it too' }))
      t.same(
        (await allConversations(store, 'u')).map((c) => c.peer),
        ['a', 'b', 'e', 'd', 'c'],
      )
    })

    t.test(`conversations: the last message is cut to ${PREVIEW_LENGTH} characters, never inside a surrogate pair`, async (t) => {
      const store = await open(t)
      const smile = '\u{1F600}' // two UTF-16 units, one character
      const texts: Record<string, string> = {
        exact: 'x'.repeat(PREVIEW_LENGTH),
        over: 'x'.repeat(PREVIEW_LENGTH) + 'y',
        pairAtCut: 'x'.repeat(PREVIEW_LENGTH - 1) + smile + 'tail',
        pairLast: 'x'.repeat(PREVIEW_LENGTH - 1) + smile,
        pairs: smile.repeat(PREVIEW_LENGTH),
        pairsOver: smile.repeat(PREVIEW_LENGTH + 1),
        long: 'z'.repeat(100_000),
      }
      for (const [peer, text] of Object.entries(texts)) await store.append(msg(peer, 'u', { msg: text }))
      const shown = Object.fromEntries(
        (await allConversations(store, 'u')).map((c) => [c.peer, [c.lastMessage.msg, c.lastMessage.truncated]]),
      )
      t.same(shown, {
        exact: [texts.exact, false],
        over: ['x'.repeat(PREVIEW_LENGTH), true],
        pairAtCut: ['x'.repeat(PREVIEW_LENGTH - 1) + smile, true],
        pairLast: [texts.pairLast, false],
        pairs: [texts.pairs, false],
        pairsOver: [smile.repeat(PREVIEW_LENGTH), true],
        long: ['z'.repeat(PREVIEW_LENGTH), true],
      })
      t.equal(
        (await store.history('u', 'long', null, 1))[0]!.msg,
        texts.long,
        'history keeps the whole text',
      )
    })

    t.test('history: newest first, paginated by before and limit, both directions', async (t) => {
      const store = await open(t)
      const pair: StoredMessage[] = []
      for (let i = 0; i < 25; i++) {
        pair.push((await store.append(i % 2 ? msg('a', 'b', { msg: `${i}` }) : msg('b', 'a', { msg: `${i}` }))).message)
        if (i % 5 === 0) await store.append(msg('a', 'c'))
        if (i % 7 === 0) await store.append(msg('c', 'b'))
      }
      const newestFirst = mids([...pair].reverse())
      const pages: string[][] = []
      let before: string | null = null
      for (;;) {
        const page: StoredMessage[] = await store.history('a', 'b', before, 10)
        if (page.length === 0) break
        pages.push(mids(page))
        before = page[page.length - 1]!.mid
      }
      t.same(
        pages.map((p) => p.length),
        [10, 10, 5],
      )
      t.same(pages.flat(), newestFirst)
      t.same(mids(await store.history('b', 'a', null, 100)), newestFirst, 'same from either side')
      t.same(mids(await store.history('a', 'b', pair[3]!.mid, 100)), newestFirst.slice(-3))
      t.same(await store.history('a', 'nobody', null, 10), [])
    })

    t.test('a conversation with oneself lists each message once', async (t) => {
      const store = await open(t)
      for (let i = 0; i < 3; i++) await store.append(msg('a', 'a', { msg: `note${i}` }))
      t.same(
        (await store.history('a', 'a', null, 10)).map((m) => m.msg),
        ['note2', 'note1', 'note0'],
      )
      const list = await allConversations(store, 'a')
      t.same(
        list.map((c) => [c.peer, c.unread]),
        [['a', 3]],
      )
    })

    t.test('purgeBefore stops between chunks once its signal is aborted; the next purge takes the rest', async (t) => {
      const store = await open(t)
      for (let i = 0; i < 2500; i += 500) await Promise.all(Array.from({ length: 500 }, () => store.append(msg('a', 'b'))))
      const newest = await store.append(msg('a', 'b'))
      while (Date.now() <= newest.message.ts) continue
      const before = Date.now()
      const first = await store.purgeBefore(before, AbortSignal.abort())
      // The memory store purges in one pass, with nothing in between to stop at.
      if (store.kind !== 'memory') t.equal(first, 1000, 'one chunk (PURGE_CHUNK), then it stopped')
      t.equal(first + (await store.purgeBefore(before)), 2501, 'all of them, in two purges')
    })

    t.test('purgeBefore deletes older messages only', async (t) => {
      const store = await open(t)
      const old = await store.append(msg('a', 'b', { ref: 'old' }))
      const lastOld = await store.append(msg('a', 'c'))
      // Wait for the clock to move past the old messages' ts (a millisecond at most).
      while (Date.now() <= lastOld.message.ts) continue
      const recent = await store.append(msg('a', 'b', { msg: 'recent' }))
      t.equal(await store.purgeBefore(old.message.ts), 0, 'the bound is exclusive')
      t.equal(await store.purgeBefore(recent.message.ts), 2)
      t.same(mids(await store.history('a', 'b', null, 10)), [recent.message.mid])
      t.same(mids(await store.since('b', '0', 10)), [recent.message.mid])
      t.same(
        (await allConversations(store, 'a')).map((c) => c.peer),
        ['b'],
        'a conversation with nothing left is gone',
      )
      const reused = await store.append(msg('a', 'b', { ref: 'old' }))
      t.equal(reused.duplicate, false, 'a purged ref is new again')
      t.ok(BigInt(reused.message.mid) > BigInt(recent.message.mid), 'mids keep growing')
      t.equal(await store.purgeBefore(Date.now() + 1), 2)
      t.equal(await store.headMid('b'), '0')
      const next = await store.append(msg('a', 'b'))
      t.ok(BigInt(next.message.mid) > BigInt(reused.message.mid), 'mids are never reused after a purge')
    })

    t.test('hammer: unread counts equal the unread rows under concurrent appends and markRead', async (t) => {
      const store = await open(t)
      const users = ['u0', 'u1', 'u2', 'u3', 'u4']
      const appends: Array<Promise<unknown>> = []
      const reads: Array<Promise<number>> = []
      let seed = 42
      const random = (n: number): number => {
        seed = (seed * 48271) % 2147483647 // Park-Miller: reproducible runs
        return seed % n
      }
      let unreadAtInsert = 0
      const total = 1500
      for (let i = 0; i < total; i++) {
        const from = users[random(5)]!
        const to = users[random(5)]!
        const read = random(4) === 0
        if (!read) unreadAtInsert++
        appends.push(store.append(msg(from, to, { read, msg: `h${i}` })))
        if (random(10) === 0) reads.push(store.markRead(to, from))
      }
      await Promise.all(appends)
      const changedByMarkRead = (await Promise.all(reads)).reduce((sum, n) => sum + n, 0)

      let stored = 0
      let unreadTotal = 0
      for (const uid of users) {
        const inbox = await store.since(uid, '0', total)
        stored += inbox.length
        t.ok(isIncreasing(mids(inbox)), `${uid}: mids increase`)
        const conversations = await allConversations(store, uid)
        for (const peer of users) {
          const rows = await store.history(uid, peer, null, total)
          const unreadRows = rows.filter((m) => m.from === peer && m.to === uid && !m.read).length
          const count = await store.unreadCount(uid, peer)
          t.equal(count, unreadRows, `unreadCount(${uid}, ${peer}) matches the rows`)
          t.equal(conversations.find((c) => c.peer === peer)?.unread ?? 0, unreadRows)
          unreadTotal += count
        }
      }
      t.equal(stored, total, 'every append stored once')
      t.equal(changedByMarkRead, unreadAtInsert - unreadTotal, 'markRead counts add up')
    })

    t.test('userMessages pages every message to or from a user, oldest first', async (t) => {
      const store = await open(t)
      const expected: string[] = []
      for (let i = 0; i < 7; i++) {
        expected.push((await store.append(msg('a', `p${i % 3}`, { msg: `out${i}` }))).message.mid)
        await store.append(msg('x', 'y', { msg: `other${i}` })) // not a's
        expected.push((await store.append(msg(`p${i % 2}`, 'a', { msg: `in${i}` }))).message.mid)
      }
      expected.push((await store.append(msg('a', 'a', { msg: 'note' }))).message.mid)
      const all = await store.userMessages('a', '0', 100)
      t.same(mids(all), expected, 'both directions, self-messages once, in mid order')
      t.match(all[0], { mid: expected[0], from: 'a', to: 'p0', msg: 'out0', ts: Number, read: false })
      const walked: string[] = []
      let after = '0'
      for (;;) {
        const page = await store.userMessages('a', after, 4)
        walked.push(...mids(page))
        if (page.length < 4) break
        after = page[page.length - 1]!.mid
      }
      t.same(walked, expected, 'pages of 4 from each last mid')
      t.same(await store.userMessages('nobody', '0', 10), [])
    })

    t.test('eraseUser deletes every message to or from the user, and nothing else', async (t) => {
      const store = await open(t)
      await store.append(msg('a', 'b', { ref: 'r1' }))
      await store.append(msg('b', 'a', { ref: 'r2' }))
      await store.append(msg('a', 'a'))
      await store.append(msg('c', 'a'))
      const kept = await store.append(msg('b', 'c', { msg: 'kept' }))
      const bc = await store.append(msg('c', 'b', { msg: 'b and c' }))
      await store.append(msg('a', 'b', { msg: 'newest' }))
      await store.markRead('a', 'b')
      await store.markRead('b', 'a')
      t.equal(await store.unreadCount('b', 'a'), 0)
      await store.append(msg('a', 'b'))
      t.equal(await store.unreadCount('b', 'a'), 1)

      t.equal(await store.eraseUser('a'), 6)
      t.same(await store.userMessages('a', '0', 100), [])
      t.same(await store.since('a', '0', 100), [])
      t.equal(await store.headMid('a'), '0')
      t.same(await allConversations(store, 'a'), [])
      t.same(await store.history('b', 'a', null, 10), [])
      t.equal(await store.unreadCount('b', 'a'), 0, "the peer's unread count forgets them")
      t.same(
        (await allConversations(store, 'b')).map((c) => [c.peer, c.lastMessage.mid, c.unread]),
        [['c', bc.message.mid, 1]],
        "the peer's conversation list forgets them",
      )
      t.same(mids(await store.history('b', 'c', null, 10)), [bc.message.mid, kept.message.mid])
      t.same(
        (await store.undelivered('b', 10)).map((m) => m.from),
        ['c'],
        'what the peer has yet to get is theirs only',
      )

      const again = await store.append(msg('a', 'b', { ref: 'r1' }))
      t.equal(again.duplicate, false, 'an erased ref is new again')
      t.equal((await store.append(msg('b', 'a', { ref: 'r2' }))).duplicate, false)
      t.equal(await store.unreadCount('b', 'a'), 1, 'a message after the erase counts as usual')
      t.equal(await store.eraseUser('a'), 2)
      t.equal(await store.eraseUser('a'), 0, 'idempotent')
      t.equal(await store.eraseUser('nobody'), 0)
    })

    t.test('eraseUser works through histories longer than a chunk', async (t) => {
      const store = await open(t)
      const writes: Array<Promise<unknown>> = []
      for (let i = 0; i < ERASE_CHUNK + 150; i++) writes.push(store.append(msg(i % 2 === 0 ? 'big' : `q${i % 5}`, i % 2 === 0 ? `q${i % 5}` : 'big')))
      const other = await store.append(msg('q1', 'q2', { msg: 'stays' }))
      await Promise.all(writes)
      t.equal(await store.eraseUser('big'), ERASE_CHUNK + 150)
      t.same(await store.userMessages('big', '0', 10), [])
      for (let i = 0; i < 5; i++) t.same((await allConversations(store, `q${i}`)).map((c) => c.peer), i === 1 ? ['q2'] : i === 2 ? ['q1'] : [])
      t.same(mids(await store.history('q1', 'q2', null, 10)), [other.message.mid])
    })

    t.test('ping resolves', async (t) => {
      const store = await open(t)
      await t.resolves(store.ping())
      t.type(store.kind, 'string')
    })
  })
}
