// DNS rebinding against a server on loopback: a page on another site, its name re-pointed at
// 127.0.0.1, reaches the server from the victim's browser with that site's name in Host. While
// HOST is loopback every request and upgrade with another Host gets 403; ALLOWED_HOSTS widens
// the set; a server on a non-loopback HOST is unchanged.
import { once } from 'node:events'
import http from 'node:http'
import { connect } from 'node:net'
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { upgradeStatus } from '../helpers/upgrade.js'
import { TEST_SECRET } from '../helpers/tokens.js'

interface Answer {
  status: number
  body: string
}

/** GET with the Host header given (none at all when null), as a browser or curl would send it. */
function get(url: string, path: string, host: string | null, headers: http.OutgoingHttpHeaders = {}): Promise<Answer> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const request = http.request({
      hostname,
      port,
      path,
      setHost: false,
      headers: host === null ? headers : { ...headers, host },
    })
    request.once('response', (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => (body += chunk))
      response.once('end', () => resolve({ status: response.statusCode ?? 0, body }))
    })
    request.once('error', reject)
    request.end()
  })
}

const PATHS = ['/admin/online', '/admin/sessions', '/users/alice/conversations', '/users/alice/conversations/bob/messages', '/healthz', '/metrics', '/openapi.json', '/', '/no-such-route']

t.test('HOST on loopback: a foreign Host gets 403 on every route and on the upgrade', async (t) => {
  const { url, wsUrl } = await startApp(t)
  for (const path of PATHS) {
    const answer = await get(url, path, 'evil.example')
    t.equal(answer.status, 403, `${path} refused`)
    t.match(JSON.parse(answer.body), { statusCode: 403, error: 'Forbidden', message: /^Host "evil\.example" is not allowed: .*ALLOWED_HOSTS/ })
  }
  t.equal((await get(url, '/admin/online', 'evil.example:3000')).status, 403, 'with a port')
  t.equal((await get(url, '/admin/online', '127.0.0.1.evil.example')).status, 403, 'a name that starts like an address')
  t.equal((await get(url, '/admin/online', 'localhost.evil.example')).status, 403, 'a name that starts like localhost')
  t.equal((await get(url, '/admin/online', '')).status, 403, 'empty Host')
  t.equal((await get(url, '/admin/online', '::1')).status, 403, 'IPv6 without brackets is not a Host')
  t.equal(await upgradeStatus(wsUrl, { headers: { host: 'evil.example:3000' } }), 403, 'WebSocket upgrade refused')
})

t.test('HOST on loopback: a request without Host is refused', async (t) => {
  const { url } = await startApp(t)
  t.equal((await get(url, '/healthz', null)).status, 400, 'HTTP/1.1 without Host: Node refuses it')
  // HTTP/1.0 does not require Host: Node lets it through, the check does not.
  const { port } = new URL(url)
  const socket = connect(Number(port), '127.0.0.1')
  socket.end('GET /admin/online HTTP/1.0\r\n\r\n')
  let raw = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => (raw += chunk))
  await once(socket, 'close')
  t.match(raw, /^HTTP\/1\.1 403 /, 'HTTP/1.0 without Host')
  t.match(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)), { statusCode: 403, message: /^Host "" is not allowed/ })
})

t.test('HOST on loopback: a second Host header is refused, whatever the first says', async (t) => {
  const { url } = await startApp(t)
  const { port } = new URL(url)
  const socket = connect(Number(port), '127.0.0.1')
  socket.end('GET /admin/online HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n')
  let raw = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => (raw += chunk))
  await once(socket, 'close')
  t.match(raw, /^HTTP\/1\.1 403 /)
  t.equal((await get(url, '/admin/online', 'localhost')).status, 200, 'one Host header of a loopback name passes')
})

t.test('HOST on loopback: loopback names and addresses pass, with any port', async (t) => {
  const { url, wsUrl } = await startApp(t)
  for (const host of ['localhost', 'localhost:3000', 'LOCALHOST:80', 'localhost.:3000', '127.0.0.1', '127.0.0.1:3000', '127.9.8.7:1', '[::1]', '[::1]:3000', '[::ffff:127.0.0.1]:3000']) {
    t.equal((await get(url, '/admin/online', host)).status, 200, host)
  }
  t.equal(await upgradeStatus(wsUrl, { headers: { host: 'localhost:3000' } }), 101, 'upgrade with Host localhost')
  t.equal(await upgradeStatus(wsUrl), 101, 'upgrade to 127.0.0.1')
})

t.test('ALLOWED_HOSTS adds names to the loopback ones', async (t) => {
  const { url, wsUrl } = await startApp(t, { allowedHosts: ['chat.example', '[fd00::5]'] })
  t.equal((await get(url, '/healthz', 'chat.example:8443')).status, 200, 'listed name, any port')
  t.equal((await get(url, '/healthz', 'CHAT.example')).status, 200, 'case does not matter')
  t.equal((await get(url, '/healthz', '[fd00::5]:3000')).status, 200, 'listed IPv6 address')
  t.equal((await get(url, '/healthz', 'localhost')).status, 200, 'loopback still passes')
  t.equal((await get(url, '/healthz', 'sub.chat.example')).status, 403, 'no wildcard')
  t.equal((await get(url, '/healthz', 'evil.example')).status, 403, 'others still refused')
  t.equal(await upgradeStatus(wsUrl, { headers: { host: 'chat.example' } }), 101)
})

t.test('HOST not on loopback: any Host is served, as before', async (t) => {
  const { url, wsUrl } = await startApp(t, { host: '0.0.0.0', jwtSecret: TEST_SECRET, adminToken: 'admin-token' })
  const answer = await get(url, '/admin/online', 'evil.example', { authorization: 'Bearer admin-token' })
  t.equal(answer.status, 200, 'admin route with its token')
  t.equal((await get(url, '/healthz', '203.0.113.9')).status, 200, 'a load balancer probing by address')
  t.equal(await upgradeStatus(wsUrl, { headers: { host: 'chat.example' } }), 101)
})

t.test('HOST not on loopback with ALLOWED_HOSTS: the list is enforced', async (t) => {
  const { url } = await startApp(t, { host: '0.0.0.0', jwtSecret: TEST_SECRET, adminToken: 'admin-token', allowedHosts: ['chat.example'] })
  t.equal((await get(url, '/healthz', 'chat.example')).status, 200)
  t.equal((await get(url, '/healthz', 'localhost')).status, 200)
  t.equal((await get(url, '/healthz', 'evil.example')).status, 403)
})
