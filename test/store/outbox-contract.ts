// The Outbox contract: every store's webhook outbox (memory, SQLite, PostgreSQL) runs this same
// suite. Each subtest gets a fresh, empty store from `make` and hands it to `destroy`. Time is
// the `now` the tests pass to claim and retry: events come due at their message's ts (a real
// Date.now()), so every test takes a base `T` after its appends and moves on from there.
import t, { type Test } from 'tap'
import type { StoredMessage } from '../../src/protocol/message.js'
import type { MessageStore, NewMessage } from '../../src/store/message-store.js'
import { eventBody, OFFLINE_EVENT, type OutboxEvent } from '../../src/store/outbox.js'
import { msg, type DestroyStore, type MakeStore } from './contract.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** A message whose recipient is offline: appended with its webhook event. */
export const offline = (from: string, to: string, extra: Partial<NewMessage> = {}): NewMessage => msg(from, to, { offlineEvent: true, ...extra })

/** The fields of a stored message an event carries (no read flag). */
export const eventMessage = ({ mid, from, to, msg: text, ts }: StoredMessage) => ({ mid, from, to, msg: text, ts })

const ids = (events: ReadonlyArray<{ id: string }>): string[] => events.map((e) => e.id)
const mids = (events: ReadonlyArray<OutboxEvent>): string[] => events.map((e) => e.message.mid)

/** A lease far beyond any `now` a test uses. */
const FOREVER = 1e15

/** Claims everything due at `now` for `claim`, leased until far away. */
const claimAll = (store: MessageStore, claim: string, now: number): Promise<OutboxEvent[]> => store.outbox.claim(claim, 10_000, now, FOREVER)

/** Waits for the clock to move past `ts` (a millisecond at most), as the store contract does. */
/**
 * Settles claimed events at `at + 1` into every state: the first sent, the second failed, the
 * third due again at `at + 5`; the fourth, if any, stays leased.
 */
async function settleMixed(store: MessageStore, events: readonly OutboxEvent[], at: number): Promise<void> {
  await store.outbox.settle('w', [{ id: events[0]!.id, kind: 'sent', at: at + 1 }])
  await store.outbox.settle('w', [{ id: events[1]!.id, kind: 'failed', at: at + 1, error: 'x' }])
  await store.outbox.settle('w', [{ id: events[2]!.id, kind: 'retry', at: at + 1, error: 'x', retryAt: at + 5 }])
}

function pastTs(ts: number): void {
  while (Date.now() <= ts) continue
}

/** Subtests a store is known to fail, by title, with why: run as `todo`, so the suite passes. */
export type KnownBugs = Record<string, string>

export function outboxContract(name: string, make: MakeStore, destroy: DestroyStore = (s) => s.close(), known: KnownBugs = {}): void {
  const used = new Set<string>()
  const test = (parent: Test, title: string, fn: (t: Test) => Promise<void>): void => {
    used.add(title)
    const todo = known[title]
    if (todo === undefined) parent.test(title, fn)
    else parent.test(title, { todo }, fn)
  }
  const open = async (t: Teardown): Promise<MessageStore> => {
    const store = await make()
    t.teardown(() => destroy(store))
    return store
  }

  t.test(`${name}: Outbox contract`, async (t) => {
    t.teardown(() => {
      for (const title of Object.keys(known)) if (!used.has(title)) throw new Error(`known bug for an unknown subtest: ${title}`)
    })
    test(t, 'an empty outbox: nothing pending, due or failed', async (t) => {
      const store = await open(t)
      t.equal(await store.outbox.pendingCount(), 0)
      t.same(await claimAll(store, 'w', Date.now() + 1e9), [])
      t.same(await store.outbox.failed(null, 10), [])
      t.equal(await store.outbox.retry('no-such-event', Date.now()), 'unknown')
      await store.outbox.release('w') // nothing to give back, no error
      await store.outbox.settle('w', [{ id: 'no-such-event', kind: 'sent', at: 1 }])
      t.equal(await store.outbox.pendingCount(), 0)
    })

    test(t, 'append writes one event only when offlineEvent is true', async (t) => {
      const store = await open(t)
      await store.append(msg('a', 'b'))
      await store.append(msg('a', 'b', { offlineEvent: false }))
      await store.append(msg('a', 'b', { delivered: true }))
      t.equal(await store.outbox.pendingCount(), 0, 'no event without offlineEvent')
      const stored = await store.append(offline('a', 'b', { msg: 'while away' }))
      t.equal(await store.outbox.pendingCount(), 1)
      const events = await claimAll(store, 'w', Date.now())
      t.equal(events.length, 1)
      t.equal(events[0]!.message.mid, stored.message.mid)
      t.equal(events[0]!.type, OFFLINE_EVENT)
      t.equal(events[0]!.attempts, 0, 'no try made yet')
    })

    test(t, 'the event carries the stored message; its body is exactly the documented JSON', async (t) => {
      const store = await open(t)
      const text = 'héllo "quoted" \\ \n\u{1F600}'
      const { message } = await store.append(offline('alice', 'bob', { msg: text, read: true }))
      const [event] = await claimAll(store, 'w', Date.now())
      t.ok(event)
      t.same(event!.message, eventMessage(message), 'mid, from, to, msg, ts of the stored message, nothing else')
      t.strictSame(Object.keys(event!.message).sort(), ['from', 'mid', 'msg', 'to', 'ts'])
      t.equal(typeof event!.message.mid, 'string')
      t.equal(typeof event!.message.ts, 'number')
      t.equal(typeof event!.ts, 'number')
      t.equal(event!.ts, message.ts, 'written with the message, in its transaction: the same ts')
      t.match(event!.id, /^\S+$/)

      const body = eventBody(event!)
      const parsed = JSON.parse(body) as Record<string, unknown>
      t.strictSame(parsed, {
        id: event!.id,
        type: 'message.offline',
        ts: event!.ts,
        message: { mid: message.mid, from: 'alice', to: 'bob', msg: text, ts: message.ts },
      })
      t.strictSame(Object.keys(parsed), ['id', 'type', 'ts', 'message'], 'a fixed key order: the bytes are signed')
      t.strictSame(Object.keys(parsed.message as object), ['mid', 'from', 'to', 'msg', 'ts'])
      t.notOk('attempts' in parsed, 'the try count is not in the body: every try sends the same bytes')

      // The next try of the same event: the same id, the same bytes.
      const T = Date.now()
      await store.outbox.settle('w', [{ id: event!.id, kind: 'retry', at: T, error: 'HTTP 500', retryAt: T + 10 }])
      const [again] = await claimAll(store, 'w2', T + 10)
      t.equal(again?.id, event!.id)
      t.equal(again?.attempts, 1)
      t.equal(eventBody(again!), body, 'the same body on every try')
    })

    test(t, 'every event has its own id; events are distinct per message', async (t) => {
      const store = await open(t)
      const stored = []
      for (let i = 0; i < 5; i++) stored.push((await store.append(offline('a', `r${i % 2}`, { msg: `m${i}` }))).message)
      const events = await claimAll(store, 'w', Date.now())
      t.equal(new Set(ids(events)).size, 5, 'five ids')
      t.same(mids(events).sort(), stored.map((m) => m.mid).sort())
      for (const event of events) {
        const message = stored.find((m) => m.mid === event.message.mid)!
        t.same(event.message, eventMessage(message))
      }
    })

    test(t, 'a duplicate ref writes no second event, sequential or in one batch', async (t) => {
      const store = await open(t)
      const first = await store.append(offline('a', 'b', { ref: 'r1' }))
      const again = await store.append(offline('a', 'b', { ref: 'r1', msg: 'resent' }))
      t.equal(again.duplicate, true)
      t.equal(await store.outbox.pendingCount(), 1)
      // Concurrent sends of one ref: they may share a write batch.
      const both = await Promise.all([store.append(offline('a', 'c', { ref: 'r2' })), store.append(offline('a', 'c', { ref: 'r2' }))])
      t.same(
        both.map((r) => r.duplicate).sort(),
        [false, true],
      )
      t.equal(await store.outbox.pendingCount(), 2, 'one event for the two sends of r2')
      const events = await claimAll(store, 'w', Date.now())
      t.same(mids(events).sort(), [first.message.mid, both.find((r) => !r.duplicate)!.message.mid].sort())
    })

    test(t, 'claim: only due events, oldest due first, at most limit', async (t) => {
      const store = await open(t)
      const stored = []
      for (let i = 0; i < 4; i++) stored.push((await store.append(offline('a', 'b', { msg: `m${i}` }))).message)
      const T = Date.now()
      const first = await store.outbox.claim('w', 10, T, T + 5)
      t.equal(first.length, 4)
      // Give each its next try at a different time, not in the order they were written.
      const dueIn = [40, 10, 30, 20]
      const byMid = new Map(first.map((e) => [e.message.mid, e]))
      const events = stored.map((m) => byMid.get(m.mid)!)
      for (const [i, event] of events.entries()) {
        await store.outbox.settle('w', [{ id: event.id, kind: 'retry', at: T + 1, error: 'down', retryAt: T + dueIn[i]! }])
      }
      t.equal(await store.outbox.pendingCount(), 4, 'a retry keeps the event pending')
      t.same(await store.outbox.claim('w', 10, T + 9, T + 1000), [], 'none due before its retry time')
      const early = await store.outbox.claim('w', 10, T + 25, T + 1000)
      t.same(ids(early), [events[1]!.id, events[3]!.id], 'only those due by now, oldest due first')
      await store.outbox.release('w')
      t.same(ids(await store.outbox.claim('w', 2, T + 100, T + 1000)), [events[1]!.id, events[3]!.id], 'limit 2: the two due first')
      t.same(ids(await store.outbox.claim('w', 1, T + 100, T + 1000)), [events[2]!.id], 'limit 1')
      t.same(ids(await store.outbox.claim('w', 1, T + 100, T + 1000)), [events[0]!.id])
      t.same(await store.outbox.claim('w', 1, T + 100, T + 1000), [], 'all leased')
      t.same(await store.outbox.claim('w', 0, T + 100000, T + 200000), [], 'limit 0 claims nothing')
    })

    test(t, 'a leased event is not claimed again, by anyone, until its lease ends', async (t) => {
      const store = await open(t)
      await store.append(offline('a', 'b'))
      await store.append(offline('a', 'c'))
      const T = Date.now()
      const mine = await store.outbox.claim('one', 1, T, T + 1000)
      t.equal(mine.length, 1)
      const theirs = await store.outbox.claim('two', 10, T, T + 1000)
      t.equal(theirs.length, 1, 'the other claim gets only the event left')
      t.not(theirs[0]!.id, mine[0]!.id)
      t.same(await store.outbox.claim('one', 10, T + 999, T + 2000), [], 'the same claim does not get it again either')
      t.same(await store.outbox.claim('three', 10, T + 999, T + 2000), [], 'nor a third one, a millisecond before the lease ends')
      t.equal(await store.outbox.pendingCount(), 2, 'claimed events count as pending')
      const late = await store.outbox.claim('three', 10, T + 1000, T + 2000)
      t.same(ids(late).sort(), [mine[0]!.id, theirs[0]!.id].sort(), 'both come due again when their leases end')
      t.same(
        late.map((e) => e.attempts),
        [0, 0],
        'a lease that ran out is not a try',
      )
    })

    test(t, 'a lease that ran out goes to the next claim; the first claimer settles nothing then', async (t) => {
      const store = await open(t)
      await store.append(offline('a', 'b'))
      const T = Date.now()
      const [event] = await store.outbox.claim('dead', 5, T, T + 100)
      t.ok(event)
      const [taken] = await store.outbox.claim('alive', 5, T + 100, T + 200)
      t.equal(taken?.id, event!.id)
      await store.outbox.settle('dead', [{ id: event!.id, kind: 'failed', at: T + 150, error: 'too late' }])
      t.same(await store.outbox.failed(null, 10), [], "the old claimer's settle is ignored")
      t.equal(await store.outbox.pendingCount(), 1)
      await store.outbox.release('dead') // gives back nothing: the lease is another's
      t.same(await store.outbox.claim('third', 5, T + 150, T + 300), [], 'still leased to the new claimer')
      await store.outbox.settle('alive', [{ id: event!.id, kind: 'sent', at: T + 160 }])
      t.equal(await store.outbox.pendingCount(), 0, "the new claimer's settle counts")
    })

    test(t, 'an event whose lease ran out keeps its place: oldest due first', async (t) => {
      const store = await open(t)
      await store.append(offline('a', 'b', { msg: 'first' }))
      await store.append(offline('a', 'b', { msg: 'second' }))
      const T = Date.now()
      const both = await store.outbox.claim('w', 2, T, T + 100)
      t.equal(both.length, 2)
      const [early, late] = both as [OutboxEvent, OutboxEvent]
      // `late` comes due at T + 10; `early` keeps its first due time (≤ T), leased until T + 100.
      await store.outbox.settle('w', [{ id: late.id, kind: 'retry', at: T + 1, error: 'x', retryAt: T + 10 }])
      t.same(ids(await store.outbox.claim('v', 1, T + 50, FOREVER)), [late.id], 'while the lease holds, the other one')
      await store.outbox.release('v')
      t.same(ids(await store.outbox.claim('v', 1, T + 100, FOREVER)), [early.id], 'once it ran out, the expired one first: it was due first')
      t.same(ids(await store.outbox.claim('v', 1, T + 100, FOREVER)), [late.id])
    })

    test(t, 'settle: sent takes the event out of the queue for good', async (t) => {
      const store = await open(t)
      await store.append(offline('a', 'b'))
      const T = Date.now()
      const [event] = await store.outbox.claim('w', 5, T, T + 100)
      await store.outbox.settle('w', [{ id: event!.id, kind: 'sent', at: T + 1 }])
      t.equal(await store.outbox.pendingCount(), 0)
      t.same(await claimAll(store, 'w', T + 1e9), [], 'never claimed again, even after the lease')
      t.same(await store.outbox.failed(null, 10), [], 'not failed either')
      t.equal(await store.outbox.retry(event!.id, T + 2), 'not-failed', 'a sent event cannot be requeued')
      // A second settle of the same try is ignored: the event is no longer leased.
      await store.outbox.settle('w', [{ id: event!.id, kind: 'failed', at: T + 3, error: 'dup' }])
      t.same(await store.outbox.failed(null, 10), [])
      t.equal(await store.outbox.pendingCount(), 0)
    })

    test(t, 'settle is ignored for another claim, or an event not claimed', async (t) => {
      const store = await open(t)
      await store.append(offline('a', 'b'))
      await store.append(offline('a', 'c'))
      const T = Date.now()
      const [event] = await store.outbox.claim('owner', 1, T, T + 100)
      const [unclaimed] = await store.outbox.claim('peek', 1, T, T + 1) // lease ends at T + 1
      await store.outbox.release('peek')
      await store.outbox.settle('intruder', [{ id: event!.id, kind: 'sent', at: T + 1 }])
      await store.outbox.settle('intruder', [{ id: event!.id, kind: 'failed', at: T + 1, error: 'x' }])
      await store.outbox.settle('intruder', [{ id: unclaimed!.id, kind: 'failed', at: T + 1, error: 'x' }])
      await store.outbox.settle('owner', [{ id: unclaimed!.id, kind: 'retry', at: T + 1, error: 'x', retryAt: T + 50 }])
      t.equal(await store.outbox.pendingCount(), 2)
      t.same(await store.outbox.failed(null, 10), [])
      const free = await store.outbox.claim('other', 10, T + 2, T + 100)
      t.same(ids(free), [unclaimed!.id], 'the released event is due, untouched by the ignored settles')
      t.equal(free[0]!.attempts, 0, 'no try was counted')
      await store.outbox.settle('owner', [{ id: event!.id, kind: 'retry', at: T + 3, error: 'HTTP 502', retryAt: T + 4 }])
      const [back] = await store.outbox.claim('other', 10, T + 4, T + 100)
      t.equal(back?.id, event!.id)
      t.equal(back?.attempts, 1, "the owner's settle counted once")
    })

    test(t, 'release gives back only the events leased to that claim', async (t) => {
      const store = await open(t)
      for (let i = 0; i < 4; i++) await store.append(offline('a', 'b', { msg: `m${i}` }))
      const T = Date.now()
      const one = await store.outbox.claim('one', 2, T, T + 1000)
      const two = await store.outbox.claim('two', 2, T, T + 1000)
      t.equal(one.length + two.length, 4)
      await store.outbox.release('one')
      const again = await store.outbox.claim('three', 10, T + 1, T + 1000)
      t.same(ids(again).sort(), ids(one).sort(), "the released events are due at once; two's stay leased")
      t.same(
        again.map((e) => e.attempts),
        [0, 0],
        'given back untried',
      )
      t.equal(await store.outbox.pendingCount(), 4)
      await store.outbox.release('two')
      t.same(ids(await store.outbox.claim('four', 10, T + 1, T + 1000)).sort(), ids(two).sort())
    })

    test(t, 'attempts count the tries; failed() shows the last error and when it was', async (t) => {
      const store = await open(t)
      const { message } = await store.append(offline('a', 'b'))
      const T = Date.now()
      let [event] = await store.outbox.claim('w', 1, T, T + 10)
      t.equal(event!.attempts, 0)
      await store.outbox.settle('w', [{ id: event!.id, kind: 'retry', at: T + 5, error: 'HTTP 503', retryAt: T + 100 }])
      t.same(await store.outbox.claim('w', 1, T + 99, T + 200), [], 'not before retryAt')
      ;[event] = await store.outbox.claim('w', 1, T + 100, T + 200)
      t.equal(event!.attempts, 1)
      await store.outbox.settle('w', [{ id: event!.id, kind: 'retry', at: T + 110, error: 'timeout', retryAt: T + 300 }])
      ;[event] = await store.outbox.claim('w', 1, T + 300, T + 400)
      t.equal(event!.attempts, 2)
      t.same(await store.outbox.failed(null, 10), [], 'retrying is not failed')
      await store.outbox.settle('w', [{ id: event!.id, kind: 'failed', at: T + 350, error: 'HTTP 410 Gone' }])
      t.equal(await store.outbox.pendingCount(), 0)
      t.same(await claimAll(store, 'w', T + 1e9), [], 'a failed event is never claimed')
      const failed = await store.outbox.failed(null, 10)
      t.equal(failed.length, 1)
      t.strictSame(failed[0], {
        id: event!.id,
        type: OFFLINE_EVENT,
        ts: message.ts,
        attempts: 3,
        message: eventMessage(message),
        lastError: 'HTTP 410 Gone',
        lastAttemptAt: T + 350,
      })
    })

    test(t, 'retry: requeued due now with a fresh count; not-failed; unknown', async (t) => {
      const store = await open(t)
      await store.append(offline('a', 'b'))
      await store.append(offline('a', 'c'))
      const T = Date.now()
      const [event, other] = await store.outbox.claim('w', 2, T, FOREVER)
      await store.outbox.settle('w', [{ id: event!.id, kind: 'retry', at: T + 1, error: 'e1', retryAt: T + 2 }])
      const [again] = await store.outbox.claim('w', 1, T + 2, T + 10)
      t.equal(again!.id, event!.id)
      await store.outbox.settle('w', [{ id: event!.id, kind: 'failed', at: T + 3, error: 'e2' }])
      t.equal(await store.outbox.retry(other!.id, T + 4), 'not-failed', 'a pending (leased) event')
      t.equal(await store.outbox.retry('no-such-event', T + 4), 'unknown')
      t.equal(await store.outbox.pendingCount(), 1)

      t.equal(await store.outbox.retry(event!.id, T + 1000), 'requeued')
      t.equal(await store.outbox.retry(event!.id, T + 1000), 'not-failed', 'already back in the queue')
      t.same(await store.outbox.failed(null, 10), [], 'no longer failed')
      t.equal(await store.outbox.pendingCount(), 2)
      t.same(await store.outbox.claim('x', 10, T + 999, T + 2000), [], 'due at the retry time, not before')
      const [requeued] = await store.outbox.claim('x', 10, T + 1000, T + 2000)
      t.equal(requeued?.id, event!.id, 'the same event, the same id')
      t.equal(requeued?.attempts, 0, 'a fresh count of tries')
      await store.outbox.settle('x', [{ id: event!.id, kind: 'failed', at: T + 1001, error: 'e3' }])
      const failed = await store.outbox.failed(null, 10)
      t.same(
        failed.map((e) => [e.id, e.attempts, e.lastError, e.lastAttemptAt]),
        [[event!.id, 1, 'e3', T + 1001]],
      )
    })

    test(t, 'failed(): newest first, paged by the id of the last one', async (t) => {
      const store = await open(t)
      const stored = []
      for (let i = 0; i < 8; i++) stored.push((await store.append(offline('a', `p${i}`, { msg: `m${i}` }))).message)
      const T = Date.now()
      const byMid = new Map((await store.outbox.claim('w', 100, T, T + 10)).map((e) => [e.message.mid, e]))
      const events = stored.map((m) => byMid.get(m.mid)!)
      t.equal(events.length, 8)
      // Events 0, 2, 3, 5, 7 fail; 1 is sent, 4 and 6 stay pending.
      const failing = [0, 2, 3, 5, 7]
      for (const [i, event] of events.entries()) {
        const outcome =
          i === 1
            ? ({ kind: 'sent', at: T + 1 } as const)
            : failing.includes(i)
              ? ({ kind: 'failed', at: T + 1 + i, error: `error ${i}` } as const)
              : ({ kind: 'retry', at: T + 1, error: 'later', retryAt: T + 1e6 } as const)
        await store.outbox.settle('w', [{ id: event.id, ...outcome }])
      }
      const newestFirst = [...failing].reverse().map((i) => events[i]!.id)
      t.same(ids(await store.outbox.failed(null, 100)), newestFirst)

      const pages: string[][] = []
      let before: string | null = null
      for (;;) {
        const page = await store.outbox.failed(before, 2)
        if (page.length === 0) break
        pages.push(ids(page))
        if (pages.length > 10) break
        before = page[page.length - 1]!.id
      }
      t.same(pages, [newestFirst.slice(0, 2), newestFirst.slice(2, 4), newestFirst.slice(4)], 'pages of 2, 2, 1, then none')
      t.same(
        ids(await store.outbox.failed(events[5]!.id, 10)),
        [events[3]!.id, events[2]!.id, events[0]!.id],
        'those failed before the cursor',
      )
      t.same(await store.outbox.failed(events[0]!.id, 10), [], 'nothing before the oldest')
      t.same(
        ids(await store.outbox.failed(events[4]!.id, 10)),
        [events[3]!.id, events[2]!.id, events[0]!.id],
        'a cursor at a pending event works as well',
      )
      const page = await store.outbox.failed(null, 1)
      t.same(
        [page[0]!.message.mid, page[0]!.lastError, page[0]!.lastAttemptAt, page[0]!.attempts],
        [stored[7]!.mid, 'error 7', T + 8, 1],
      )
    })

    test(t, 'pendingCount follows writes, sends, failures and requeues', async (t) => {
      const store = await open(t)
      for (let i = 0; i < 3; i++) await store.append(offline('a', 'b', { msg: `m${i}` }))
      t.equal(await store.outbox.pendingCount(), 3)
      const T = Date.now()
      const [a, b, c] = await store.outbox.claim('w', 3, T, T + 10)
      t.equal(await store.outbox.pendingCount(), 3, 'claimed ones included')
      await store.outbox.settle('w', [{ id: a!.id, kind: 'sent', at: T }])
      t.equal(await store.outbox.pendingCount(), 2)
      await store.outbox.settle('w', [{ id: b!.id, kind: 'failed', at: T, error: 'x' }])
      t.equal(await store.outbox.pendingCount(), 1)
      await store.outbox.settle('w', [{ id: c!.id, kind: 'retry', at: T, error: 'x', retryAt: T + 5 }])
      t.equal(await store.outbox.pendingCount(), 1)
      await store.outbox.retry(b!.id, T)
      t.equal(await store.outbox.pendingCount(), 2)
    })

    test(t, 'add: an event for a message already stored, with its stored fields', async (t) => {
      const store = await open(t)
      const { message } = await store.append(msg('a', 'b', { msg: 'pushed to nobody', delivered: true }))
      t.equal(await store.outbox.pendingCount(), 0)
      const before = Date.now()
      await store.outbox.add(message)
      t.equal(await store.outbox.pendingCount(), 1)
      const [event] = await claimAll(store, 'w', Date.now())
      t.ok(event)
      t.same(event!.message, eventMessage(message), 'the five fields, no read flag')
      t.ok(event!.ts >= before && event!.ts <= Date.now(), 'written now')
      t.strictSame(JSON.parse(eventBody(event!)), { id: event!.id, type: OFFLINE_EVENT, ts: event!.ts, message: eventMessage(message) })
    })

    test(t, 'add is a no-op for a message that is gone (erased, purged, never stored)', async (t) => {
      const store = await open(t)
      const erased = (await store.append(msg('gone', 'b'))).message
      const purged = (await store.append(msg('x', 'y'))).message
      pastTs(purged.ts)
      const kept = (await store.append(msg('k', 'l'))).message
      t.equal(await store.eraseUser('gone'), 1)
      t.equal(await store.purgeBefore(kept.ts), 1)
      await store.outbox.add(erased)
      await store.outbox.add(purged)
      await store.outbox.add({ mid: String(BigInt(kept.mid) + 1000n), from: 'k', to: 'l', msg: 'never', ts: kept.ts })
      t.equal(await store.outbox.pendingCount(), 0, 'no event written')
      t.same(await claimAll(store, 'w', Date.now() + 1e9), [])
    })

    test(t, 'eraseUser takes the events of the erased messages, pending, leased, sent and failed, and no others', async (t) => {
      const store = await open(t)
      // Of a: to a, from a, a to a; four states each side.
      const aMsgs = [offline('a', 'b'), offline('b', 'a'), offline('a', 'a'), offline('c', 'a')]
      const keepMsgs = [offline('b', 'c'), offline('c', 'b'), offline('d', 'b'), offline('b', 'd')]
      const aStored = []
      const keepStored = []
      for (let i = 0; i < 4; i++) {
        aStored.push((await store.append(aMsgs[i]!)).message)
        keepStored.push((await store.append(keepMsgs[i]!)).message)
      }
      await store.append(msg('a', 'b', { msg: 'no event' }))
      const T = Date.now()
      const all = await store.outbox.claim('w', 100, T, T + 10)
      t.equal(all.length, 8)
      const eventOf = (m: StoredMessage): OutboxEvent => all.find((e) => e.message.mid === m.mid)!
      for (const group of [aStored, keepStored]) await settleMixed(store, group.map(eventOf), T)
      t.equal(await store.outbox.pendingCount(), 4)
      t.equal(await store.eraseUser('a'), 5)

      t.equal(await store.outbox.pendingCount(), 2, "only the others' pending events are left")
      t.same(ids(await store.outbox.failed(null, 10)), [eventOf(keepStored[1]!).id], 'only the others’ failed event is left')
      for (const m of aStored) t.equal(await store.outbox.retry(eventOf(m).id, T + 6), 'unknown', `the event of ${m.from}->${m.to} is gone`)
      t.equal(await store.outbox.retry(eventOf(keepStored[0]!).id, T + 6), 'not-failed', 'the sent event of another stays')
      // The erased leased event's settle finds nothing; the kept one's works.
      await store.outbox.settle('w', [{ id: eventOf(aStored[3]!).id, kind: 'failed', at: T + 7, error: 'late' }])
      await store.outbox.settle('w', [{ id: eventOf(keepStored[3]!).id, kind: 'sent', at: T + 7 }])
      t.equal(await store.outbox.pendingCount(), 1)
      t.same(ids(await store.outbox.failed(null, 10)), [eventOf(keepStored[1]!).id])
      const left = await claimAll(store, 'x', T + 1e9)
      t.same(ids(left), [eventOf(keepStored[2]!).id], 'the one pending event left is due, the erased are not')
      t.same(left[0]!.message, eventMessage(keepStored[2]!))
    })

    test(t, 'purgeBefore takes the events of the purged messages, in every state, and no others', async (t) => {
      const store = await open(t)
      const old = []
      for (let i = 0; i < 4; i++) old.push((await store.append(offline('a', 'b', { msg: `old${i}` }))).message)
      pastTs(old[3]!.ts)
      const recent = []
      for (let i = 0; i < 4; i++) recent.push((await store.append(offline('a', 'b', { msg: `new${i}` }))).message)
      const T = Date.now()
      const all = await store.outbox.claim('w', 100, T, FOREVER)
      t.equal(all.length, 8)
      const eventOf = (m: StoredMessage): OutboxEvent => all.find((e) => e.message.mid === m.mid)!
      for (const group of [old, recent]) await settleMixed(store, group.map(eventOf), T)
      t.equal(await store.purgeBefore(recent[0]!.ts), 4)

      t.equal(await store.outbox.pendingCount(), 2)
      t.same(ids(await store.outbox.failed(null, 10)), [eventOf(recent[1]!).id])
      for (const m of old) t.equal(await store.outbox.retry(eventOf(m).id, T + 6), 'unknown', `the event of ${m.msg} is gone`)
      t.equal(await store.outbox.retry(eventOf(recent[0]!).id, T + 6), 'not-failed')
      const left = await claimAll(store, 'x', T + 1e9)
      t.same(ids(left), [eventOf(recent[2]!).id], 'the leased one of the recent stays leased; the old ones are gone')
      await store.outbox.release('w')
      t.same(ids(await claimAll(store, 'y', T + 1e9)), [eventOf(recent[3]!).id], 'released: the recent leased one, not the purged one')
    })
  })
}
