// Every row of the code table this server answers with, over a real socket.
import t, { type Test } from 'tap'
import { startApp } from '../helpers/app.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'

const SEED_FIELDS = ['type', 'error', 'code', 'msg', 'uid', 'touid']

function hasSeedFields(t: Test, frame: Frame): void {
  for (const field of SEED_FIELDS) t.ok(field in frame, `frame has ${field}`)
}

t.test('success codes 201-204 and 200, with the seed fields and ref echoed', async (t) => {
  const { wsUrl } = await startApp(t)
  const alice = await TestClient.connect(wsUrl)
  const bound = await alice.request({ type: 'bind', uid: 'alice' })
  t.match(bound, { type: 'bind', error: false, code: 201, uid: 'alice', touid: '', mid: '0' })
  hasSeedFields(t, bound)

  const bob = await TestClient.bound(wsUrl, 'bob')
  const ack = await alice.request({ type: 'send', uid: 'alice', touid: 'bob', msg: 'hello' })
  t.match(ack, { type: 'send', error: false, code: 204, touid: 'bob', mid: /^\d+$/ })
  t.type(ack.ts, 'number')
  hasSeedFields(t, ack)

  const pushed = await bob.nextCode(200)
  t.match(pushed, { type: 'send', error: false, code: 200, msg: 'hello', uid: 'alice', touid: 'bob', mid: ack.mid, ts: ack.ts })
  t.notOk(pushed.offline, 'a live message is not marked offline')
  t.notOk('ref' in pushed, "the sender's ref is not leaked to the recipient")

  const joined = await bob.request({ type: 'join', uid: 'bob', touid: 'alice' })
  t.match(joined, { type: 'join', error: false, code: 202, touid: 'alice' })
  hasSeedFields(t, joined)
  const exited = await bob.request({ type: 'exit', uid: 'bob', touid: 'alice' })
  t.match(exited, { type: 'exit', error: false, code: 203, touid: 'alice' })
  hasSeedFields(t, exited)
  await alice.close()
  await bob.close()
})

t.test('error codes 400-405 and 413, each one reply, connection still usable', async (t) => {
  const { wsUrl } = await startApp(t, { maxMessageLength: 10 })
  const c = await TestClient.connect(wsUrl)

  const notJson = c.next()
  c.send('{not json')
  t.match(await notJson, { type: '', error: true, code: 401 })
  const notObject = c.next()
  c.send('[1,2]')
  t.match(await notObject, { type: '', error: true, code: 401 })

  t.match(await c.request({ type: 'send', touid: 'bob', msg: 'x' }), { type: 'send', error: true, code: 402 })
  t.match(await c.request({ type: 'join', touid: 'bob' }), { type: 'join', error: true, code: 402 })
  t.match(await c.request({ type: 'exit' }), { type: 'exit', error: true, code: 402 })

  t.match(await c.request({ type: 'bind' }), { type: 'bind', error: true, code: 400, msg: /uid/ })
  t.match(await c.request({ type: 'bind', uid: '' }), { type: 'bind', error: true, code: 400, msg: /uid/ })
  t.match(await c.request({ type: 'bind', uid: 'u'.repeat(129) }), { code: 400, msg: /uid/ })
  t.match(await c.request({ type: 'bind', uid: 42 }), { code: 400, msg: /uid/ })
  t.match(await c.request({ uid: 'x' }), { type: '', code: 400, msg: /type/ })
  t.match(await c.request({ type: 'dance', uid: 'x' }), { type: 'dance', error: true, code: 404 })

  t.match(await c.request({ type: 'bind', uid: 'carol' }), { code: 201 })
  t.match(await c.request({ type: 'bind', uid: 'carol' }), { type: 'bind', error: true, code: 403 })
  t.match(await c.request({ type: 'send', msg: 'x' }), { type: 'send', code: 400, msg: /touid/ })
  t.match(await c.request({ type: 'send', touid: '', msg: 'x' }), { code: 400, msg: /touid/ })
  t.match(await c.request({ type: 'send', touid: 'dave' }), { code: 400, msg: /msg/ })
  t.match(await c.request({ type: 'send', touid: 'dave', msg: 7 }), { code: 400, msg: /msg/ })
  // An empty message would be stored and shown as an empty bubble: refused, naming the field.
  t.match(await c.request({ type: 'send', touid: 'dave', msg: '' }), { type: 'send', code: 400, msg: 'msg: must not be empty' })
  t.match(await c.request({ type: 'send', uid: 'mallory', touid: 'dave', msg: 'x' }), { type: 'send', code: 405, uid: 'carol' })
  t.match(await c.request({ type: 'join', uid: 'mallory', touid: 'dave' }), { type: 'join', code: 405 })
  t.match(await c.request({ type: 'send', touid: 'dave', msg: '12345678901' }), { type: 'send', error: true, code: 413, uid: 'carol', touid: '' })
  // A NUL in ref is refused like one in an id: no store could keep it, so a 500 would repeat forever.
  c.send({ type: 'send', touid: 'dave', msg: 'x', ref: 'a\u0000b' })
  t.match(await c.next(), { type: 'send', code: 400, msg: 'ref: must not contain NUL characters', ref: undefined })
  t.match(await c.request({ type: 'send', touid: 'dave', msg: '😀'.repeat(10) }), { code: 204 }, 'length counts characters')

  // Still usable after all of that.
  t.match(await c.request({ type: 'send', touid: 'dave', msg: 'ok' }), { code: 204 })
  t.same(c.frames, [], 'exactly one reply per bad frame')
  await c.close()
})

t.test('uid may be left out after bind', async (t) => {
  const { wsUrl } = await startApp(t)
  const c = await TestClient.bound(wsUrl, 'erin')
  t.match(await c.request({ type: 'send', touid: 'frank', msg: 'hi' }), { code: 204, uid: 'erin' })
  t.match(await c.request({ type: 'join', touid: 'frank' }), { code: 202 })
  t.match(await c.request({ type: 'exit' }), { code: 203, touid: 'frank' })
  await c.close()
})

t.test('frames sent right after bind, before its reply, are processed in order', async (t) => {
  const { wsUrl } = await startApp(t)
  const c = await TestClient.connect(wsUrl)
  c.send({ type: 'bind', uid: 'gina' })
  c.send({ type: 'send', uid: 'gina', touid: 'hal', msg: 'first', ref: 'a' })
  t.match(await c.next(), { code: 201 })
  t.match(await c.next(), { code: 204, ref: 'a' })
  await c.close()
})

t.test('500 when the store fails: the message was not stored', async (t) => {
  const { app, wsUrl } = await startApp(t)
  const c = await TestClient.bound(wsUrl, 'ivan')
  const append = app.store.append.bind(app.store)
  app.store.append = () => Promise.reject(new Error('disk full'))
  t.match(await c.request({ type: 'send', touid: 'judy', msg: 'lost?' }), { type: 'send', error: true, code: 500, uid: 'ivan', touid: '' })
  app.store.append = append
  t.same(await app.store.history('ivan', 'judy', null, 10), [], 'nothing stored')
  t.match(await c.request({ type: 'send', touid: 'judy', msg: 'retry' }), { code: 204 })
  await c.close()
})

t.test('a join that fails (500) leaves the conversation as it was: messages stay unread', async (t) => {
  const { app, wsUrl } = await startApp(t)
  const reader = await TestClient.bound(wsUrl, 'nora')
  const writer = await TestClient.bound(wsUrl, 'otto')
  const markRead = app.store.markRead.bind(app.store)
  app.store.markRead = () => Promise.reject(new Error('disk full'))
  t.match(await reader.request({ type: 'join', touid: 'otto' }), { type: 'join', error: true, code: 500, uid: 'nora', touid: '' })
  app.store.markRead = markRead
  await writer.request({ type: 'send', touid: 'nora', msg: 'after the failed join' })
  t.match(await reader.nextCode(200), { msg: 'after the failed join' })
  t.equal(await app.store.unreadCount('nora', 'otto'), 1, 'not read: the conversation did not open')
  t.match(await reader.request({ type: 'join', touid: 'otto' }), { code: 202 })
  t.equal(await app.store.unreadCount('nora', 'otto'), 0, 'a join that succeeds reads it')
  await Promise.all([reader.close(), writer.close()])
})

t.test('503 and close 1001 on shutdown', async (t) => {
  const { app, wsUrl } = await startApp(t)
  const c = await TestClient.bound(wsUrl, 'kim')
  const goodbye = c.nextCode(503)
  await app.close()
  t.match(await goodbye, { type: '', error: true, code: 503, uid: 'kim', touid: '' })
  t.equal((await c.closed).code, 1001)
})

t.test('frames over MAX_PAYLOAD_BYTES are closed with 1009; binary frames get 400', async (t) => {
  const { wsUrl } = await startApp(t, { maxPayloadBytes: 1024 })
  const c = await TestClient.bound(wsUrl, 'leo')
  const binary = c.next()
  c.sendRaw(Buffer.from([0, 1, 2, 3]), true)
  t.match(await binary, { error: true, code: 400 })
  t.match(await c.request({ type: 'send', touid: 'mia', msg: 'still here' }), { code: 204 })

  const other = await TestClient.bound(wsUrl, 'mia')
  c.send({ type: 'send', touid: 'mia', msg: 'x'.repeat(2000) })
  t.equal((await c.closed).code, 1009)
  t.match(await other.request({ type: 'send', touid: 'leo', msg: 'unaffected' }), { code: 204 })
  await other.close()
})
