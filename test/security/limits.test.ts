// Attacks on the transport limits: foreign browser origins, too many connections (in
// total and from one address), and frame floods (429 per frame, then close 1008).
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'
import { upgradeStatus } from '../helpers/upgrade.js'

t.test('ALLOWED_ORIGINS: a foreign Origin gets 403 on the upgrade', async (t) => {
  const { wsUrl, app } = await startApp(t, { allowedOrigins: ['https://chat.example', 'http://localhost:8080'] })
  t.equal(await upgradeStatus(wsUrl, { origin: 'https://evil.example' }), 403, 'foreign origin')
  t.equal(await upgradeStatus(wsUrl, { origin: 'null' }), 403, 'opaque origin')
  t.equal(await upgradeStatus(wsUrl, { origin: 'https://chat.example' }), 101, 'allowed origin')
  t.equal(await upgradeStatus(wsUrl, { origin: 'HTTPS://CHAT.EXAMPLE/' }), 101, 'case and trailing slash do not matter')
  t.equal(await upgradeStatus(wsUrl, { origin: 'http://localhost:8080' }), 101, 'second entry')
  t.equal(await upgradeStatus(wsUrl), 101, 'no Origin (not a browser) passes')
  t.equal(app.hub.registry.listSessions().length, 0)
  const c = await TestClient.bound(wsUrl, 'after', {})
  await c.close()
})

t.test('ALLOWED_ORIGINS unset: any origin', async (t) => {
  const { wsUrl } = await startApp(t)
  t.equal(await upgradeStatus(wsUrl, { origin: 'https://anything.example' }), 101)
})

t.test('MAX_CONNECTIONS: the next upgrade is refused with 503 until one closes', async (t) => {
  const { wsUrl, url } = await startApp(t, { maxConnections: 3 })
  const open = await Promise.all([0, 1, 2].map(() => TestClient.connect(wsUrl)))
  t.equal(await upgradeStatus(wsUrl), 503, '4th connection refused')
  t.equal(await upgradeStatus(wsUrl), 503, 'refusals are not counted as connections')
  t.equal((await fetch(`${url}/healthz`)).status, 200, 'plain HTTP still served')
  await open[0]!.close()
  // The server releases the slot when its side of the TCP socket closes: poll, bounded.
  let status = 0
  for (let i = 0; i < 200 && status !== 101; i++) status = await upgradeStatus(wsUrl)
  t.equal(status, 101, 'a slot freed by a close is reused')
  await Promise.all(open.slice(1).map((c) => c.close()))
})

t.test('RATE_LIMIT: a flood of typing notices, though none costs a 429, is closed 1008 at the ceiling', async (t) => {
  const { wsUrl } = await startApp(t, { rateLimit: 5, rateBurst: 10 })
  await TestClient.bound(wsUrl, 'bob', { features: ['typing'] })
  const c = await TestClient.bound(wsUrl, 'flooder', { features: ['typing'] })
  // One is forwarded, the rest throttled (one per pair per second) and given back to the first bucket only.
  for (let i = 0; i < 200; i++) c.send({ type: 'typing', touid: 'bob' })
  const { code } = await c.closed
  t.equal(code, 1008, 'the ceiling (4 x the burst) still counts them')
  t.same(
    c.frames.filter((f) => f.code === 429),
    [],
    'no 429 for a typing notice',
  )
})

t.test('MAX_CONNECTIONS_PER_IP: the next upgrade from the same address gets 429', async (t) => {
  const { wsUrl } = await startApp(t, { maxConnectionsPerIp: 2 })
  const open = await Promise.all([0, 1].map(() => TestClient.connect(wsUrl)))
  t.equal(await upgradeStatus(wsUrl), 429)
  await Promise.all(open.map((c) => c.close()))
})

t.test('RATE_LIMIT: frames over the bucket get 429 (type and ref echoed), a flood is closed 1008', async (t) => {
  const { wsUrl } = await startApp(t, { rateLimit: 5, rateBurst: 10 })
  const peer = await TestClient.bound(wsUrl, 'peer')
  const c = await TestClient.bound(wsUrl, 'flooder')
  // The bind took one token; 9 remain. 9 frames pass, then 429s.
  for (let i = 0; i < 60; i++) c.send({ type: 'exit', ref: `r${i}` })
  c.send('not json at all')
  const { code } = await c.closed
  t.equal(code, 1008, 'closed with 1008 once sustained at 4x the limit')
  const replies = c.frames
  const passed = replies.filter((f) => f.code === 203)
  const limited = replies.filter((f) => f.code === 429)
  t.ok(passed.length >= 9 && passed.length <= 11, `about the burst passed (${passed.length})`)
  t.ok(limited.length >= 25, `the rest got 429 (${limited.length})`)
  t.match(limited[0], { type: 'exit', error: true, code: 429, ref: /^r\d+$/ })
  t.equal(passed.length + limited.length, replies.length, 'nothing else came back')
  t.ok(replies.length < 61, 'frames after the ceiling were not answered')
  // Each frame got at most one reply, in order.
  const refs = replies.map((f) => Number(String(f.ref).slice(1)))
  t.same(refs, [...refs].sort((a, b) => a - b))
  t.equal(new Set(refs).size, refs.length)
  // Others are unaffected, and the same user can come back.
  const again = await TestClient.bound(wsUrl, 'flooder')
  t.match(await again.request({ type: 'send', touid: 'peer', msg: 'calm now' }), { code: 204 })
  t.match(await peer.nextCode(200), { msg: 'calm now' })
  await Promise.all([peer.close(), again.close()])
})

t.test('RATE_LIMIT: a client within its burst never sees 429 (default burst: 2 x RATE_LIMIT)', async (t) => {
  const { wsUrl } = await startApp(t)
  const c = await TestClient.bound(wsUrl, 'polite')
  // bind + 99 frames = the whole default burst, however fast they come.
  let limited = 0
  for (let i = 0; i < 99; i++) if ((await c.request({ type: 'exit' })).code === 429) limited++
  t.equal(limited, 0)
  await c.close()
})

t.test('RATE_LIMIT=0 turns the limit off', async (t) => {
  const { wsUrl } = await startApp(t, { rateLimit: 0 })
  const c = await TestClient.bound(wsUrl, 'unlimited')
  for (let i = 0; i < 2000; i++) c.send({ type: 'exit', ref: `r${i}` })
  const last = await c.next((f) => f.ref === 'r1999')
  t.equal(last.code, 203)
  t.notOk(c.frames.some((f) => f.code === 429))
  await c.close()
})
