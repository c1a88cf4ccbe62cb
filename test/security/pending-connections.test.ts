// Half-sent upgrades: a client that opens TCP connections and never finishes their request
// head holds a file descriptor each, which the WebSocket admission never saw. They count
// against MAX_CONNECTIONS_PER_IP from the moment the connection opens (past it, the connection
// is closed at once), and one that has not sent its head within HEADERS_TIMEOUT_MS gets 408.
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { startServer } from '../helpers/server-process.js'
import { eventually, within } from '../helpers/eventually.js'
import { rawUpgrade } from '../helpers/raw-ws.js'
import { upgradeStatus } from '../helpers/upgrade.js'
import { TestClient } from '../helpers/ws-client.js'

const HEAD = 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'

interface RawConnection {
  socket: Socket
  /** Everything the server wrote, once it closed the connection. */
  closed: Promise<string>
}

/** A TCP connection that has sent part of an upgrade's head, without the blank line that ends it. */
async function halfSentUpgrade(port: number, head = HEAD): Promise<RawConnection> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' })
  socket.on('error', () => {}) // a refused connection may be reset: its close is what the tests await
  let received = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => (received += chunk))
  // Not events.once: it rejects on the reset that a refused connection may get.
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(received)))
  await once(socket, 'connect')
  socket.write(head)
  return { socket, closed }
}

const portOf = (url: string): number => Number(new URL(url).port)

t.test('half-sent upgrades count against MAX_CONNECTIONS_PER_IP', async (t) => {
  const { url, wsUrl, app } = await startApp(t, { maxConnectionsPerIp: 5 })
  const port = portOf(url)
  // Connections are accepted in the order they were opened: one at a time, each after the last.
  const held: RawConnection[] = []
  for (let i = 0; i < 6; i++) held.push(await halfSentUpgrade(port))
  // Five, plus the one let past the limit so a client at its limit can hear a 429.
  const refused = await halfSentUpgrade(port)
  t.equal(await refused.closed, '', 'the 7th is closed at once, without a word')
  t.equal(app.connectionAdmission.pendingFrom('127.0.0.1'), 6, 'six are held')
  await t.rejects(upgradeStatus(wsUrl), 'a real client from that address is refused too')

  // Closing them frees their places: one gone, and an upgrade is let in to hear its 429.
  held.pop()!.socket.destroy()
  await eventually(() => app.connectionAdmission.pendingFrom('127.0.0.1') === 5, 'the server to see one close')
  const atLimit = await rawUpgrade(wsUrl)
  t.equal(atLimit.status, 429, 'five pending are the limit: the upgrade gets 429')
  t.equal(atLimit.headers['retry-after'], '5')
  held.pop()!.socket.destroy()
  await eventually(() => app.connectionAdmission.pendingFrom('127.0.0.1') === 4, 'the server to see another close')
  const client = await TestClient.bound(wsUrl, 'after-the-flood')
  t.match(await client.request({ type: 'send', touid: 'x', msg: 'hi' }), { code: 204 }, 'a normal client connects')
  // The pending ones and the WebSocket share the limit: 4 + 1.
  t.equal(await upgradeStatus(wsUrl), 429)
  for (const connection of held) connection.socket.destroy()
  await client.close()
})

t.test('a connection without its request head is closed after HEADERS_TIMEOUT_MS, with 408', async (t) => {
  const { url, wsUrl } = await startApp(t, { headersTimeoutMs: 300 })
  const port = portOf(url)
  // Connected first: had its timer not been cleared by its upgrade, it would fire first.
  const upgraded = await TestClient.bound(wsUrl, 'upgraded-in-time')
  const started = performance.now()
  const half = await halfSentUpgrade(port)
  const silent = await halfSentUpgrade(port, '')
  t.match(await half.closed, /^HTTP\/1\.1 408 Request Timeout\r\n/, 'half-sent upgrade: 408, then closed')
  t.ok(performance.now() - started >= 290, `not before the timeout (${Math.round(performance.now() - started)} ms)`)
  t.match(await silent.closed, /^HTTP\/1\.1 408 /, 'a connection that sends nothing at all too')
  t.match(await upgraded.request({ type: 'exit' }), { code: 203 }, 'an upgraded connection is not touched')
  t.equal((await fetch(`${url}/healthz`)).status, 200, 'plain requests are served')
  await upgraded.close()
})

t.test('a request whose body is still coming gets 408 after HEADERS_TIMEOUT_MS, from its own timer', async (t) => {
  const { url, app } = await startApp(t, { headersTimeoutMs: 300, maxConnectionsPerIp: 5 })
  const started = performance.now()
  const slow = await halfSentUpgrade(
    portOf(url),
    'POST /admin/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"from":',
  )
  // Timed from the connection by its own timer, not by Node's check every 30 s.
  t.match(await within(slow.closed, 5000, 'the 408'), /^HTTP\/1\.1 408 /, '408, then closed')
  t.ok(performance.now() - started >= 290, 'not before the timeout')
  t.equal(app.connectionAdmission.pendingFrom('127.0.0.1'), 0, 'no longer counted')
})

t.test('a connection kept alive after its answer counts while it waits, and gives way to a new one at the limit', async (t) => {
  const { url, app } = await startApp(t, { maxConnectionsPerIp: 2 })
  const port = portOf(url)
  const reused = await halfSentUpgrade(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  await eventually(() => app.connectionAdmission.pendingFrom('127.0.0.1') === 1, 'the idle connection to be counted')
  // Its next request takes it out of the count; answered, it is back in.
  reused.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  await eventually(() => app.connectionAdmission.pendingFrom('127.0.0.1') === 1, 'counted again after its second answer')
  const idle = await halfSentUpgrade(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  await eventually(() => app.connectionAdmission.pendingFrom('127.0.0.1') === 2, 'both idle ones counted')
  // Two idle and one half-sent: one past the limit, let in. The next makes an idle one give way.
  const half = await halfSentUpgrade(port)
  const next = await halfSentUpgrade(port)
  t.match(await reused.closed, /HTTP\/1\.1 200 [\s\S]*HTTP\/1\.1 200 /, 'the oldest idle one closed, after both its answers')
  t.equal(app.connectionAdmission.pendingFrom('127.0.0.1'), 3, 'the new one counted in its place')
  const another = await halfSentUpgrade(port)
  await eventually(() => idle.socket.destroyed, 'the other idle one gives way too')
  const last = await halfSentUpgrade(port)
  t.equal(await last.closed, '', 'with no idle one left, a new connection past the limit is closed at once')
  for (const connection of [half, next, another]) connection.socket.destroy()
  await eventually(() => app.connectionAdmission.pendingFrom('127.0.0.1') === 0, 'every connection gone')
})

t.test('TRUST_PROXY: the TCP peer is the proxy, so connections are not counted by it', async (t) => {
  const { url, app } = await startApp(t, { maxConnectionsPerIp: 2, trustProxy: true })
  const port = portOf(url)
  const held: RawConnection[] = []
  for (let i = 0; i < 5; i++) held.push(await halfSentUpgrade(port))
  t.equal(app.connectionAdmission.pendingFrom('127.0.0.1'), 0)
  // Each finishes its head for a different client address: all five are upgraded.
  const upgraded = held.map(({ socket }, i) => {
    const answer = new Promise<string>((resolve) => socket.once('data', (chunk: string) => resolve(chunk)))
    socket.write(`Sec-WebSocket-Key: ${Buffer.alloc(16, i).toString('base64')}\r\nX-Forwarded-For: 198.51.100.${i}\r\n\r\n`)
    return answer
  })
  for (const answer of await Promise.all(upgraded)) t.match(answer, /^HTTP\/1\.1 101 /)
  for (const connection of held) connection.socket.destroy()
})

t.test('the reported attack: a flood of half-sent upgrades from one address leaves the server to everyone else', async (t) => {
  // A low open-file limit, as in the report: without the per-address count, 300 held
  // connections take every descriptor and the next client anywhere gets "socket hang up".
  const env = { STORE_URL: 'memory:', MAX_CONNECTIONS_PER_IP: '50', HEADERS_TIMEOUT_MS: '60000' }
  const server = await startServer(t, env, { openFiles: 128 })
  const port = portOf(server.url)
  const flood: RawConnection[] = []
  for (let i = 0; i < 300; i++) flood.push(await halfSentUpgrade(port))
  // Another address (all of 127.0.0.0/8 is this machine) is served as usual, flood or not.
  const other = await TestClient.connect(server.wsUrl, { localAddress: '127.0.0.2' })
  other.send({ type: 'bind', uid: 'bystander' })
  t.match(await other.next(), { code: 201 })
  t.match(await other.request({ type: 'send', touid: 'x', msg: 'still here' }), { code: 204 })
  await other.close()
  // Accepted in order: the first 51 are held (50, and one past the limit), the rest closed at once.
  await Promise.all(flood.slice(51).map((c) => c.closed))
  t.equal(flood.filter((c) => c.socket.closed).length, 300 - 51, 'all but 51 closed at once')
  t.ok(
    server.logs.some((l) => l.level === 40 && /connections refused: MAX_CONNECTIONS_PER_IP/.test(String(l.msg))),
    'the refusals are logged at warn',
  )
  t.ok(server.logs.filter((l) => /connections refused/.test(String(l.msg))).length < 5, 'in aggregate, not one line each')
  for (const connection of flood) connection.socket.destroy()
  server.child.kill('SIGTERM')
  t.match(await server.exited, { code: 0 })
})
