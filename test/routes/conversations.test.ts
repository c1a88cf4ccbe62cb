// GET /users/:uid/conversations in pages, against every store: `limit` (default 50, capped
// at 200), the `nextBefore` cursor walking every conversation once by last activity, a new
// message moving its conversation to the front, previews cut to 200 characters, 400 for bad
// parameters, and an answer bounded however many conversations the user has (issue 15: one
// 4 KB message to each of thousands of uids made a 20 MB answer).
import t from 'tap'
import { PREVIEW_LENGTH } from '../../src/protocol/preview.js'
import { startApp } from '../helpers/app.js'
import { STORE_KINDS, storeUrl } from '../helpers/stores.js'
import { TestClient } from '../helpers/ws-client.js'

interface Page {
  conversations: Array<{
    peer: string
    unread: number
    online: boolean
    lastMessage: { mid: string; from: string; to: string; msg: string; truncated: boolean; ts: number }
  }>
  nextBefore: string | null
}

const PARTNERS = 500
const LONG = 'x'.repeat(4096)

for (const kind of STORE_KINDS) {
  t.test(kind, async (t) => {
    const { app, url, wsUrl } = await startApp(t, { storeUrl: await storeUrl(t, kind) })
    // 'heavy' wrote 4 KB to each of 500 uids, 100 at a time (so that many share a ts).
    for (let i = 0; i < PARTNERS; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) => app.store.append({ from: 'heavy', to: `p${i + j}`, msg: LONG, read: false, delivered: false })),
      )
    }
    const get = async (query = ''): Promise<{ status: number; bytes: number; body: Page }> => {
      const res = await fetch(`${url}/users/heavy/conversations${query}`)
      const text = await res.text()
      return { status: res.status, bytes: Buffer.byteLength(text), body: JSON.parse(text) as Page }
    }

    const first = await get()
    t.equal(first.status, 200)
    t.equal(first.body.conversations.length, 50, 'no parameters: the first page of the default 50')
    t.type(first.body.nextBefore, 'string')
    t.match(first.body.conversations[0], {
      peer: `p${PARTNERS - 1}`,
      unread: 0,
      online: false,
      lastMessage: { from: 'heavy', msg: 'x'.repeat(PREVIEW_LENGTH), truncated: true },
    })
    // About 300 bytes an entry; 1 KB each is a bound the whole list (2 MB here) is far above.
    t.ok(first.bytes < 50 * 1024, `the default page is bounded: ${first.bytes} bytes`)
    const largest = await get('?limit=100000')
    t.equal(largest.body.conversations.length, 200, 'a larger limit is capped at 200, not refused')
    t.ok(largest.bytes < 200 * 1024, `the largest page is bounded: ${largest.bytes} bytes`)

    // The cursor walks every conversation once, newest activity first.
    const seen: Page['conversations'] = []
    const sizes: number[] = []
    let before: string | null = null
    do {
      const page: Page = (await get(`?limit=200${before === null ? '' : `&before=${before}`}`)).body
      sizes.push(page.conversations.length)
      seen.push(...page.conversations)
      before = page.nextBefore
    } while (before !== null)
    t.same(sizes, [200, 200, 100])
    t.equal(new Set(seen.map((c) => c.peer)).size, PARTNERS, 'every conversation once')
    const mids = seen.map((c) => BigInt(c.lastMessage.mid))
    t.ok(
      mids.every((mid, i) => i === 0 || mids[i - 1]! > mid),
      'by last activity, newest first',
    )
    const stamps = seen.map((c) => c.lastMessage.ts)
    t.ok(new Set(stamps).size < stamps.length, 'across conversations that tie on ts')
    t.equal((await get('?limit=100')).body.nextBefore, seen[99]!.lastMessage.mid)
    const exact = await get(`?limit=100&before=${seen[399]!.lastMessage.mid}`)
    t.equal(exact.body.conversations.length, 100)
    t.equal(exact.body.nextBefore, null, 'a page that ends the list says so')

    // A reply over WebSocket moves its conversation to the front, with a short text not cut.
    const p7 = await TestClient.bound(wsUrl, 'p7')
    t.match(await p7.request({ type: 'send', touid: 'heavy', msg: 'short reply' }), { code: 204 })
    const moved = (await get('?limit=2')).body
    t.same(
      moved.conversations.map((c) => [c.peer, c.unread, c.online, c.lastMessage.msg, c.lastMessage.truncated]),
      [
        ['p7', 1, true, 'short reply', false],
        [`p${PARTNERS - 1}`, 0, false, 'x'.repeat(PREVIEW_LENGTH), true],
      ],
    )
    const rest = (await get(`?limit=200&before=${seen[0]!.lastMessage.mid}`)).body.conversations
    t.notOk(
      rest.some((c) => c.peer === 'p7'),
      'a cursor taken before the move no longer shows it: it is on the first page now',
    )
    await p7.close()

    // Infinity and 1e400: Ajv coerces them to infinite numbers that pass `integer` (x-finite).
    for (const bad of ['limit=0', 'limit=-5', 'limit=abc', 'limit=1.5', 'limit=-Infinity', 'limit=Infinity', 'limit=1e400', 'before=abc', 'before=-1', `before=${'9'.repeat(21)}`]) {
      const res = await fetch(`${url}/users/heavy/conversations?${bad}`)
      t.equal(res.status, 400, bad)
      t.match(await res.json(), { statusCode: 400, message: String })
    }
    t.equal((await get('?limit=&before=')).body.conversations.length, 50, 'empty parameters count as absent')
    t.same((await get(`?before=${seen[PARTNERS - 1]!.lastMessage.mid}`)).body, { conversations: [], nextBefore: null })
  })
}
