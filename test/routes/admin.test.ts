import t from 'tap'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'

const TOKEN = 'admin-secret-token'

t.test('admin routes with a token', async (t) => {
  const { url, wsUrl } = await startApp(t, { adminToken: TOKEN })
  const auth = { authorization: `Bearer ${TOKEN}` }

  for (const path of ['/admin/online', '/admin/sessions']) {
    const none = await fetch(url + path)
    t.equal(none.status, 401, `${path} without a token`)
    t.match(await none.json(), { statusCode: 401, error: 'Unauthorized', message: String })
    const wrong = await fetch(url + path, { headers: { authorization: 'Bearer nope' } })
    t.equal(wrong.status, 401, `${path} with a wrong token`)
  }

  const alice = await TestClient.bound(wsUrl, 'alice')
  const bob = await TestClient.bound(wsUrl, 'bob')
  await TestClient.connect(wsUrl) // not bound: not listed
  await bob.request({ type: 'join', touid: 'alice' })

  const online = await fetch(url + '/admin/online', { headers: auth })
  t.equal(online.status, 200)
  const onlineBody = (await online.json()) as { count: number; uids: string[] }
  t.equal(onlineBody.count, 2)
  t.same(onlineBody.uids.sort(), ['alice', 'bob'])

  const sessions = await fetch(url + '/admin/sessions', { headers: auth })
  const body = (await sessions.json()) as { count: number; sessions: Array<Record<string, unknown>> }
  t.equal(body.count, 2)
  const bobSession = body.sessions.find((s) => s.uid === 'bob')!
  t.match(bobSession, { id: String, uid: 'bob', joined: 'alice', connectedAt: String, remoteAddress: String, node: String })
  t.match(body.sessions.find((s) => s.uid === 'alice'), { joined: null })

  const missing = await fetch(`${url}/admin/sessions/nope`, { method: 'DELETE', headers: auth })
  t.equal(missing.status, 404)
  const empty = await fetch(`${url}/admin/sessions/`, { method: 'DELETE', headers: auth })
  t.equal(empty.status, 400, 'an empty id is a bad request, as an empty uid is')
  const denied = await fetch(`${url}/admin/sessions/${String(bobSession.id)}`, { method: 'DELETE' })
  t.equal(denied.status, 401)
  const kicked = await fetch(`${url}/admin/sessions/${String(bobSession.id)}`, { method: 'DELETE', headers: auth })
  t.equal(kicked.status, 204)
  await bob.closed
  const after = (await (await fetch(url + '/admin/online', { headers: auth })).json()) as { uids: string[] }
  t.same(after.uids, ['alice'])
  await alice.close()
})

t.test('without ADMIN_TOKEN the admin routes answer loopback clients', async (t) => {
  const { url } = await startApp(t)
  const res = await fetch(url + '/admin/online')
  t.equal(res.status, 200)
  t.same(await res.json(), { count: 0, uids: [] })
})

t.test('without ADMIN_TOKEN a request relayed by a proxy on this host is refused', async (t) => {
  const { url } = await startApp(t)
  const relayed: Array<Record<string, string>> = [{ 'x-forwarded-for': '203.0.113.7' }, { forwarded: 'for=203.0.113.7' }, { 'x-real-ip': '203.0.113.7' }]
  for (const headers of relayed) {
    for (const path of ['/admin/online', '/admin/sessions', '/metrics']) {
      const res = await fetch(url + path, { headers })
      t.equal(res.status, 401, `${path} with ${Object.keys(headers)[0]}`)
    }
  }
})
