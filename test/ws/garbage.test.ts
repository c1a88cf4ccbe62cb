// A burst of garbage on one connection: every frame gets exactly one error reply, the
// same connection and a new one still work.
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'

t.test('garbage burst', async (t) => {
  const { wsUrl } = await startApp(t)
  const peer = await TestClient.bound(wsUrl, 'peer')
  const c = await TestClient.bound(wsUrl, 'noisy')
  const garbage: Array<string | Buffer> = [
    'not json',
    '',
    'null',
    '42',
    '"string"',
    '[]',
    '{"type":null}',
    '{"type":["send"]}',
    '{"type":"send","touid":{"a":1},"msg":"x"}',
    '{"type":"send","touid":"peer","msg":null}',
    '{"type":"send","touid":"peer","msg":"x","ref":12}',
    JSON.stringify({ type: 'x'.repeat(10_000) }),
    JSON.stringify({ type: 'send', touid: 'p'.repeat(5000), msg: 'x' }),
    JSON.stringify({ type: 'bind', uid: 'y'.repeat(5000) }),
    '{"__proto__":{"polluted":true},"type":"join"}',
    '{"constructor":{"prototype":{"polluted":true}},"type":"exit","touid":5}',
    '{"type":"join","touid":"' + '\\u0000'.repeat(100) + '"}',
    '{"type":"send","touid":"peer","msg":"nul \\u0000 inside"}',
    Buffer.from([0xff, 0xfe, 0x00]),
  ]
  for (const data of garbage) c.sendRaw(data, Buffer.isBuffer(data))
  const replies = []
  for (let i = 0; i < garbage.length; i++) replies.push(await c.next((f) => f.error))
  t.equal(replies.length, garbage.length)
  for (const reply of replies) t.ok(reply.code >= 400 && reply.code < 500, `error code ${reply.code}`)
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution')

  t.match(await c.request({ type: 'send', touid: 'peer', msg: 'still works' }), { code: 204 })
  t.match(await peer.nextCode(200), { msg: 'still works' })
  const fresh = await TestClient.bound(wsUrl, 'fresh')
  t.match(await fresh.request({ type: 'send', touid: 'peer', msg: 'new one too' }), { code: 204 })
  t.same(c.frames, [], 'exactly one reply per frame')
  await Promise.all([peer.close(), c.close(), fresh.close()])
})
