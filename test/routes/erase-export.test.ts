// DELETE /admin/users/:uid and the exports (GET /admin/users/:uid/export, /users/:uid/export),
// on every store: an erase closes the user's connections (4003), takes their messages out of
// their peers' lists and unread counts, frees their refs, and is idempotent; an export is
// every message to or from the user, oldest first, one JSON object per line.
import t from 'tap'
import type { StoredMessage } from '../../src/protocol/message.js'
import { startApp } from '../helpers/app.js'
import { STORE_KINDS, storeUrl } from '../helpers/stores.js'
import { signToken, TEST_SECRET } from '../helpers/tokens.js'
import { TestClient } from '../helpers/ws-client.js'

const TOKEN = 'admin-secret-token'
const admin = { authorization: `Bearer ${TOKEN}` }

/** One NDJSON line: a message with the history route's fields. */
type Line = StoredMessage

const lines = (text: string): Line[] =>
  text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Line)

for (const kind of STORE_KINDS) {
  t.test(`${kind}: erase and export`, async (t) => {
    const { url, wsUrl } = await startApp(t, { adminToken: TOKEN, storeUrl: await storeUrl(t, kind) })
    const alice = await TestClient.bound(wsUrl, 'alice')
    const bob = await TestClient.bound(wsUrl, 'bob')
    const acks = []
    acks.push(await alice.request({ type: 'send', touid: 'bob', msg: 'one' }))
    acks.push(await bob.request({ type: 'send', touid: 'alice', msg: 'two' }))
    acks.push(await alice.request({ type: 'send', touid: 'carol', msg: 'three' }))
    acks.push(await alice.request({ type: 'send', touid: 'alice', msg: 'note' }))
    await bob.request({ type: 'send', touid: 'carol', msg: 'bob to carol' })
    const ref = await alice.request({ type: 'send', touid: 'bob', msg: 'with a ref', ref: 'keep-me' } as Record<string, unknown>)

    // The export: every message of alice's, oldest first, the history route's fields.
    const exported = await fetch(`${url}/admin/users/alice/export`, { headers: admin })
    t.equal(exported.status, 200)
    t.match(exported.headers.get('content-type'), /^application\/x-ndjson/)
    const rows = lines(await exported.text())
    t.same(
      rows.map((r) => r.msg),
      ['one', 'two', 'three', 'note', 'with a ref'],
    )
    t.same(Object.keys(rows[0]!), ['mid', 'from', 'to', 'msg', 'ts', 'read'])
    t.match(rows[1], { mid: acks[1]!.mid, from: 'bob', to: 'alice', msg: 'two', ts: acks[1]!.ts, read: false })
    t.equal((await fetch(`${url}/admin/users/alice/export`)).status, 401, 'admin only')
    t.equal(await (await fetch(`${url}/admin/users/nobody/export`, { headers: admin })).text(), '', 'nothing to export')

    // The erase: alice's connection closes with 4003, her messages go.
    const erased = await fetch(`${url}/admin/users/alice`, { method: 'DELETE', headers: admin })
    t.equal(erased.status, 200)
    t.same(await erased.json(), { deleted: 5 })
    t.match(await alice.closed, { code: 4003 })

    const list = (await (await fetch(`${url}/users/bob/conversations`, { headers: admin })).json()) as {
      conversations: Array<{ peer: string; unread: number }>
    }
    t.same(
      list.conversations.map((c) => [c.peer, c.unread]),
      [['carol', 0]],
      "gone from bob's list and unread count",
    )
    const carolList = (await (await fetch(`${url}/users/carol/conversations`, { headers: admin })).json()) as {
      conversations: Array<{ peer: string; unread: number }>
    }
    t.same(
      carolList.conversations.map((c) => [c.peer, c.unread]),
      [['bob', 1]],
    )
    t.equal(await (await fetch(`${url}/admin/users/alice/export`, { headers: admin })).text(), '')

    // A ref of an erased message names nothing now.
    const again = await TestClient.bound(wsUrl, 'alice')
    again.send({ type: 'send', touid: 'bob', msg: 'with a ref', ref: 'keep-me' })
    const ack = await again.next((f) => f.ref === 'keep-me')
    t.match(ack, { code: 204 })
    t.not(ack.mid, ref.mid, 'a new message')
    t.match(await bob.next((f) => f.code === 200 && f.mid === ack.mid), { msg: 'with a ref' }, 'and pushed')

    t.same(await (await fetch(`${url}/admin/users/alice`, { method: 'DELETE', headers: admin })).json(), { deleted: 1 })
    t.match(await again.closed, { code: 4003 })
    t.same(await (await fetch(`${url}/admin/users/alice`, { method: 'DELETE', headers: admin })).json(), { deleted: 0 }, 'idempotent')
    t.equal((await fetch(`${url}/admin/users/alice`, { method: 'DELETE' })).status, 401, 'admin only')
    await bob.close()
  })
}

t.test('an export streams a history longer than a page', async (t) => {
  const { app, url } = await startApp(t, { adminToken: TOKEN })
  const total = 1234
  for (let i = 0; i < total; i++) await app.store.append({ from: i % 3 === 0 ? 'dan' : `p${i % 7}`, to: i % 3 === 0 ? `p${i % 7}` : 'dan', msg: `m${i}`, read: false, delivered: false })
  const rows = lines(await (await fetch(`${url}/admin/users/dan/export`, { headers: admin })).text())
  t.equal(rows.length, total)
  t.same(
    rows.map((r) => r.msg),
    Array.from({ length: total }, (_, i) => `m${i}`),
    'oldest first, each once',
  )
})

t.test("with auth on, a user exports their own messages, and not another's", async (t) => {
  const { url, wsUrl } = await startApp(t, { adminToken: TOKEN, jwtSecret: TEST_SECRET })
  const eve = await TestClient.bound(wsUrl, 'eve', { token: await signToken({ sub: 'eve' }) })
  await eve.request({ type: 'send', touid: 'frank', msg: 'hi frank' })
  const own = await fetch(`${url}/users/eve/export`, { headers: { authorization: `Bearer ${await signToken({ sub: 'eve' })}` } })
  t.equal(own.status, 200)
  t.match(lines(await own.text()), [{ from: 'eve', to: 'frank', msg: 'hi frank' }])
  const other = await fetch(`${url}/users/eve/export`, { headers: { authorization: `Bearer ${await signToken({ sub: 'frank' })}` } })
  t.equal(other.status, 403)
  t.match(await other.json(), { code: 'DUET_NOT_YOUR_DATA' })
  t.equal((await fetch(`${url}/users/eve/export`)).status, 401)
  const byAdmin = await fetch(`${url}/users/eve/export`, { headers: admin })
  t.equal(byAdmin.status, 200)
  t.equal(lines(await byAdmin.text()).length, 1)
  await eve.close()
})
