// Lone UTF-16 surrogates: JSON can carry one ("\ud800"), UTF-8 cannot, so a stored id or text
// with one would come back from history as something other than what was acked. They are
// refused with 400 naming the field, like NUL, in every id and text of a frame and in the REST
// path; a surrogate pair (an emoji) is text like any other and reads back unchanged.
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'

const LONE = 'must not contain lone UTF-16 surrogates'

t.test('WS: a lone surrogate in uid, touid, ref or msg gets 400 naming the field', async (t) => {
  const { wsUrl } = await startApp(t)
  const c = await TestClient.connect(wsUrl)
  t.match(await c.request({ type: 'bind', uid: '\ud83d' }), { type: 'bind', error: true, code: 400, msg: `uid: ${LONE}` })
  t.match(await c.request({ type: 'bind', uid: 'a\udc00b' }), { code: 400, msg: `uid: ${LONE}` }, 'a low surrogate alone')
  t.match(await c.request({ type: 'bind', uid: 'ana' }), { code: 201 })
  t.match(await c.request({ type: 'send', touid: 'b\ud800', msg: 'x' }), { type: 'send', code: 400, msg: `touid: ${LONE}` })
  t.match(await c.request({ type: 'send', touid: 'bo', msg: 'a\ud800b' }), { type: 'send', code: 400, msg: `msg: ${LONE}` })
  t.match(await c.request({ type: 'send', touid: 'bo', msg: '\udfff\ud800' }), { code: 400, msg: `msg: ${LONE}` }, 'a pair in the wrong order')
  t.match(await c.request({ type: 'send', uid: 'ana\ud800', touid: 'bo', msg: 'x' }), { code: 400, msg: `uid: ${LONE}` })
  t.match(await c.request({ type: 'join', touid: '\ud800' }), { type: 'join', code: 400, msg: `touid: ${LONE}` })
  t.match(await c.request({ type: 'exit', touid: '\ud800' }), { type: 'exit', code: 400, msg: `touid: ${LONE}` })
  // A bad ref is not echoed (it is what is refused); the reply still comes, in order.
  c.send({ type: 'send', touid: 'bo', msg: 'x', ref: 'r\ud800' })
  t.match(await c.next(), { type: 'send', code: 400, msg: `ref: ${LONE}`, ref: undefined })
  // NUL keeps its own wording.
  t.match(await c.request({ type: 'send', touid: 'bo', msg: 'a\u0000\ud800' }), { code: 400, msg: 'msg: must not contain NUL characters' })
  t.same(c.frames, [], 'one reply per frame, nothing else')
  await c.close()
})

t.test('what is acked is what history reads back: surrogate pairs are kept', async (t) => {
  const { wsUrl, url } = await startApp(t)
  const sender = await TestClient.bound(wsUrl, 'ana😀')
  const text = 'a😀b 𝄞'
  const ack = await sender.request({ type: 'send', touid: 'bo', msg: text })
  t.match(ack, { code: 204, uid: 'ana😀' })
  const path = `/users/${encodeURIComponent('ana😀')}/conversations/bo/messages`
  const history = (await (await fetch(url + path)).json()) as { messages: Array<{ msg: string; from: string }> }
  t.same(
    history.messages.map((m) => [m.from, m.msg]),
    [['ana😀', text]],
  )
  await sender.close()
})

t.test('REST: ids in the path that could not be stored are 400', async (t) => {
  const { url } = await startApp(t)
  // A lone surrogate has no UTF-8 form, so its WTF-8 bytes are not a valid percent-encoding.
  const lone = await fetch(`${url}/users/a%ED%A0%80b/conversations`)
  t.equal(lone.status, 400, 'lone surrogate in :uid')
  const peer = await fetch(`${url}/users/ana/conversations/%ED%B0%80/messages`)
  t.equal(peer.status, 400, 'lone surrogate in :peer')
  const nul = await fetch(`${url}/users/a%00b/conversations`)
  t.equal(nul.status, 400, 'NUL in :uid')
  t.match(await nul.json(), { statusCode: 400, message: /params\/uid/ })
  t.equal((await fetch(`${url}/users/${encodeURIComponent('😀')}/conversations`)).status, 200, 'a pair is fine')
})
