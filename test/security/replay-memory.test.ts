// Memory a client makes the server keep while its bind's replay is under way is bounded by
// SLOW_CONSUMER_BYTES, like its unsent frames: the frames it sends behind its bind, and the live
// messages held for it meanwhile. Each attack runs against a real server process whose RSS is
// sampled from /proc; the offender is closed 1013, a bystander's round trip keeps working, and
// every acked message stays retrievable.
import type { Socket } from 'node:net'
import t, { type Test } from 'tap'
import type { WebSocket } from 'ws'
import { eventually } from '../helpers/eventually.js'
import { bystanderWhile } from '../helpers/bystander.js'
import { rssMB, sampleRss } from '../helpers/rss.js'
import { startServer, type ServerProcess } from '../helpers/server-process.js'
import { TestClient } from '../helpers/ws-client.js'

const MB = 1 << 20
const SLOW_CONSUMER_BYTES = MB
const MESSAGE = 'm'.repeat(4000)
/** Enough offline messages that the replay stalls once the kernel's socket buffers are full. */
const BACKLOG = 5000
/** RSS growth allowed while the attack runs: the bound itself, with room for garbage and heap slack. */
const RSS_GROWTH_LIMIT_MB = 32 * (SLOW_CONSUMER_BYTES / MB)

const rawSocket = (client: TestClient): Socket => (client.socket as WebSocket & { _socket: Socket })._socket

async function start(t: Test): Promise<ServerProcess> {
  return startServer(t, { STORE_URL: 'memory:', RATE_LIMIT: '0', SLOW_CONSUMER_BYTES: String(SLOW_CONSUMER_BYTES) })
}

/** Stores `count` messages to `to` from ten senders at once; resolves with the acked mids. */
async function sendMany(wsUrl: string, to: string, count: number, prefix: string): Promise<string[]> {
  const senders = await Promise.all(Array.from({ length: 10 }, (_, i) => TestClient.bound(wsUrl, `${prefix}${i}`)))
  const mids: string[] = []
  await Promise.all(
    senders.map(async (sender) => {
      for (let sent = 0; sent < count / senders.length; sent += 50) {
        const acks = await Promise.all(Array.from({ length: 50 }, () => sender.request({ type: 'send', touid: to, msg: MESSAGE })))
        for (const ack of acks) {
          if (ack.code !== 204) throw new Error(`not acked: ${JSON.stringify(ack)}`)
          mids.push(ack.mid!)
        }
      }
    }),
  )
  await Promise.all(senders.map((s) => s.close()))
  return mids
}

/** Binds `uid` on a socket that does not read: its replay stalls on the full buffers. */
async function stalledBind(wsUrl: string, uid: string): Promise<TestClient> {
  const client = await TestClient.connect(wsUrl)
  rawSocket(client).pause()
  client.send({ type: 'bind', uid })
  return client
}

/** Sessions the server lists for `uid` (admin route: loopback, no ADMIN_TOKEN). */
async function sessionsOf(url: string, uid: string): Promise<number> {
  const sessions = (await (await fetch(`${url}/admin/sessions`)).json()) as { sessions: Array<{ uid: string }> }
  return sessions.sessions.filter((s) => s.uid === uid).length
}

/** Reads what the stalled client was sent, then its close. */
async function resumeUntilClosed(client: TestClient): Promise<{ code: number; reason: string }> {
  rawSocket(client).resume()
  return client.closed
}

/** Every message stored for `uid`, by a fresh bind with since 0. */
async function allStored(wsUrl: string, uid: string, expected: number): Promise<string[]> {
  const client = await TestClient.bound(wsUrl, uid, { since: '0' })
  const mids: string[] = []
  while (mids.length < expected) mids.push((await client.nextCode(200)).mid!)
  await client.close()
  return mids
}

t.test('frames sent behind a stalled replay are counted: the flooder is closed 1013', async (t) => {
  const server = await start(t)
  const pid = server.child.pid!
  const acked = await sendMany(server.wsUrl, 'flooder', BACKLOG, 'seed')
  const offender = await stalledBind(server.wsUrl, 'flooder')
  await eventually(async () => (await sessionsOf(server.url, 'flooder')) === 1, 'the flooder bound')

  const rssBefore = rssMB(pid)
  const rss = sampleRss(t, pid)
  // 64 KB frames (just under MAX_PAYLOAD_BYTES), 80 MB in all, while the replay waits.
  const frame = JSON.stringify({ type: 'send', touid: 'someone', msg: 'f'.repeat(65_000) })
  const flood = (async () => {
    for (let i = 0; i < 1280 && offender.socket.readyState === offender.socket.OPEN; i++) {
      offender.sendRaw(frame)
      // Let the client's socket write it out: what counts is what the server reads.
      if (i % 16 === 15) await new Promise((resolve) => setImmediate(resolve))
    }
    await eventually(async () => (await sessionsOf(server.url, 'flooder')) === 0, 'the flooder evicted', 20_000)
  })()
  const { slowest } = await bystanderWhile(server.wsUrl, flood)
  await flood
  const growth = rss.stop() - rssBefore
  t.comment(`server RSS grew ${growth.toFixed(1)} MB during the flood; bystander's slowest round trip ${slowest.toFixed(1)} ms`)
  t.ok(growth < RSS_GROWTH_LIMIT_MB, `RSS growth ${growth.toFixed(1)} MB stays under ${RSS_GROWTH_LIMIT_MB} MB`)
  t.ok(slowest < 1000, 'the bystander kept its round trips')

  const closed = await resumeUntilClosed(offender)
  t.equal(closed.code, 1013, 'closed: try again later')
  t.match(closed.reason, /slow consumer/)
  t.same((await allStored(server.wsUrl, 'flooder', acked.length)).sort(), acked.sort(), 'every acked message is still there')
})

t.test('live messages held for a stalled replay are counted: the stalled session is closed 1013', async (t) => {
  const server = await start(t)
  const pid = server.child.pid!
  const backlog = await sendMany(server.wsUrl, 'stalled', BACKLOG, 'seed')
  const victim = await stalledBind(server.wsUrl, 'stalled')
  await eventually(async () => (await sessionsOf(server.url, 'stalled')) === 1, 'the victim bound')

  const rssBefore = rssMB(pid)
  const rss = sampleRss(t, pid)
  // Ten senders, 12 MB of live messages to a session that holds them behind its replay.
  const live = sendMany(server.wsUrl, 'stalled', 3000, 'live')
  const { slowest } = await bystanderWhile(server.wsUrl, live)
  const liveMids = await live
  await eventually(async () => (await sessionsOf(server.url, 'stalled')) === 0, 'the stalled session evicted')
  const growth = rss.stop() - rssBefore
  t.comment(`server RSS grew ${growth.toFixed(1)} MB while 12 MB went to a stalled replay; bystander's slowest round trip ${slowest.toFixed(1)} ms`)
  t.ok(growth < RSS_GROWTH_LIMIT_MB + 12, `RSS growth ${growth.toFixed(1)} MB: the 12 MB stored, and no more than the bound beside it`)
  t.ok(slowest < 1000, 'the bystander kept its round trips')

  const closed = await resumeUntilClosed(victim)
  t.equal(closed.code, 1013, 'closed: try again later')
  const expected = [...backlog, ...liveMids].sort()
  t.same((await allStored(server.wsUrl, 'stalled', expected.length)).sort(), expected, 'every acked message is still there')
})
