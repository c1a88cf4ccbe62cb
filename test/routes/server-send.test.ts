// POST /admin/messages: a send on a user's behalf takes the path of a WebSocket send, on
// every store: pushed live, or at the recipient's bind; counted unread; a resend answers the
// same mid; refused as a frame would be (400, 413).
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { STORE_KINDS, storeUrl } from '../helpers/stores.js'
import { TestClient } from '../helpers/ws-client.js'

const TOKEN = 'admin-secret-token'
const admin = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }

const post = (url: string, body: unknown, headers: Record<string, string> = admin) =>
  fetch(`${url}/admin/messages`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) })

for (const kind of STORE_KINDS) {
  t.test(`${kind}: a server-side send is a send`, async (t) => {
    const { url, wsUrl } = await startApp(t, { adminToken: TOKEN, storeUrl: await storeUrl(t, kind) })
    const bob = await TestClient.bound(wsUrl, 'bob')

    const live = await post(url, { from: 'system', to: 'bob', msg: 'hello bob', ref: 'r1' })
    t.equal(live.status, 201)
    const sent = (await live.json()) as { mid: string; ts: number }
    t.match(sent, { mid: /^[0-9]+$/, ts: Number })
    t.match(await bob.nextCode(200), { type: 'send', uid: 'system', touid: 'bob', msg: 'hello bob', mid: sent.mid, ts: sent.ts, offline: undefined })

    const resent = await post(url, { from: 'system', to: 'bob', msg: 'hello bob', ref: 'r1' })
    t.equal(resent.status, 200, 'a resend')
    t.same(await resent.json(), sent, 'answers the same mid')

    const offline = await post(url, { from: 'system', to: 'carol', msg: 'hello carol' })
    t.equal(offline.status, 201)
    const { mid } = (await offline.json()) as { mid: string }
    const carol = await TestClient.bound(wsUrl, 'carol')
    t.match(await carol.nextCode(200), { uid: 'system', msg: 'hello carol', mid, offline: true }, 'pushed at the bind')

    const conversations = (await (await fetch(`${url}/users/bob/conversations`, { headers: admin })).json()) as {
      conversations: Array<{ peer: string; unread: number }>
    }
    t.match(conversations.conversations, [{ peer: 'system', unread: 1 }], 'counted unread, once')

    // The WebSocket ack and the HTTP answer share the ref space of (from, to).
    const system = await TestClient.bound(wsUrl, 'system')
    system.send({ type: 'send', touid: 'bob', msg: 'x', ref: 'r1' })
    t.match(await system.next((f) => f.ref === 'r1'), { code: 204, mid: sent.mid }, 'a resend over WebSocket')
    await Promise.all([bob.close(), carol.close(), system.close()])
  })
}

t.test('the longest message fits the body limit however its JSON escapes it', async (t) => {
  const maxMessageLength = 200_000
  const { url } = await startApp(t, { adminToken: TOKEN, maxMessageLength })
  const msg = '😀'.repeat(maxMessageLength)
  // As ASCII-only encoders write it (Python's json.dumps by default): 12 bytes a character, 2.4 MB.
  const escaped = `{"from":"a","to":"b","msg":"${'\\ud83d\\ude00'.repeat(maxMessageLength)}"}`
  t.equal(escaped.length, maxMessageLength * 12 + 30)
  const res = await post(url, escaped)
  t.equal(res.status, 201, 'stored')
  const history = (await (await fetch(`${url}/users/b/conversations/a/messages`, { headers: admin })).json()) as { messages: Array<{ msg: string }> }
  t.equal(history.messages[0]?.msg, msg, 'the text, unescaped')
  const over = await post(url, `{"from":"a","to":"b","msg":"${'\\ud83d\\ude00'.repeat(maxMessageLength + 1)}"}`)
  t.equal(over.status, 413, 'one character more: too long')
  t.match(await over.json(), { code: 'DUET_MESSAGE_TOO_LONG' })
})

t.test('refused as a WebSocket send is', async (t) => {
  const { url } = await startApp(t, { adminToken: TOKEN, maxMessageLength: 10 })
  const tooLong = await post(url, { from: 'a', to: 'b', msg: 'x'.repeat(11) })
  t.equal(tooLong.status, 413)
  t.match(await tooLong.json(), { statusCode: 413, code: 'DUET_MESSAGE_TOO_LONG', message: 'msg: longer than 10 characters' })
  t.equal((await post(url, { from: 'a', to: 'b', msg: '😀'.repeat(10) })).status, 201, 'characters, not UTF-16 units')

  const bad: unknown[] = [
    {},
    { from: 'a', to: 'b' },
    { from: '', to: 'b', msg: 'x' },
    { from: 'a', to: 'b'.repeat(129), msg: 'x' },
    { from: 'a', to: 'b', msg: 5 },
    { from: 'a', to: 'b', msg: 'nul \u0000' },
    { from: 'a', to: 'b', msg: 'lone \ud800' },
    { from: 'a\u0000', to: 'b', msg: 'x' },
    { from: 'a', to: 'b', msg: 'x', ref: 'r'.repeat(65) },
    { from: 'a', to: 'b', msg: 'x', ref: 'lone \udc00' },
    'not json',
  ]
  for (const body of bad) {
    const res = await post(url, body)
    t.equal(res.status, 400, JSON.stringify(body))
    t.match(await res.json(), { statusCode: 400, code: String })
  }
  const nul = await post(url, { from: 'a', to: 'b', msg: 'nul \u0000' })
  t.match(await nul.json(), { code: 'FST_ERR_VALIDATION', message: 'msg: must not contain NUL characters' }, "the frame's 400 text")
  const lone = await post(url, { from: 'a', to: 'b', msg: 'lone \ud800' })
  t.match(await lone.json(), { message: 'msg: must not contain lone UTF-16 surrogates' })
  t.equal((await post(url, { from: 'a', to: 'b', msg: 'x' }, { 'content-type': 'application/json' })).status, 401, 'admin only')
})
