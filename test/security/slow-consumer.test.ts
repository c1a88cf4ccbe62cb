// A client that never reads while a peer sends it 10 MB: the server's buffer for it stays
// under SLOW_CONSUMER_BYTES (plus one frame), the connection is closed with 1013 and its
// presence dropped, server RSS stays bounded, and nothing is lost: a later bind with
// `since` replays every acked message, paced so the replay itself is not cut off.
import type { Socket } from 'node:net'
import t from 'tap'
import type { WebSocket } from 'ws'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'

const MB = 1 << 20
const MESSAGE_CHARS = 10_000
const MESSAGES = 1000 // 10 MB of text
const WINDOW = 50

const rawSocket = (ws: WebSocket): Socket => (ws as unknown as { _socket: Socket })._socket

t.test('a client that never reads is closed, not buffered without bound', async (t) => {
  const limit = MB
  const { app, wsUrl } = await startApp(t, { rateLimit: 0, maxMessageLength: MESSAGE_CHARS, slowConsumerBytes: limit })
  const slow = await TestClient.bound(wsUrl, 'slow')
  rawSocket(slow.socket).pause()
  const sender = await TestClient.bound(wsUrl, 'sender')

  const maxBuffered = (): number => {
    let max = 0
    for (const socket of app.websocketServer.clients) max = Math.max(max, socket.bufferedAmount)
    return max
  }
  const rssBefore = process.memoryUsage().rss
  let peakRss = rssBefore
  let peakBuffered = 0
  let evictedAt = -1
  const acked: string[] = []
  const body = 'x'.repeat(MESSAGE_CHARS - 10)
  for (let sent = 0; sent < MESSAGES; sent += WINDOW) {
    const acks = []
    for (let i = sent; i < sent + WINDOW; i++) acks.push(sender.request({ type: 'send', touid: 'slow', msg: `${i}`.padStart(10, '0') + body }))
    for (const ack of await Promise.all(acks)) {
      if (ack.code !== 204) t.fail(`send not acked: ${JSON.stringify(ack)}`)
      acked.push(ack.mid!)
    }
    peakBuffered = Math.max(peakBuffered, maxBuffered())
    peakRss = Math.max(peakRss, process.memoryUsage().rss)
    if (evictedAt < 0 && !app.hub.registry.onlineUids().includes('slow')) evictedAt = sent + WINDOW
  }
  t.ok(evictedAt > 0, `the slow connection was dropped from presence (after ~${evictedAt} messages)`)
  t.ok(peakBuffered <= limit + 2 * MESSAGE_CHARS, `server-side buffer peaked at ${peakBuffered} bytes (bound ${limit})`)
  const growth = (peakRss - rssBefore) / MB
  t.comment(`RSS growth while 10 MB went to a non-reader: ${growth.toFixed(1)} MiB (the store itself holds 10 MB)`)
  t.ok(growth < 96, 'RSS stays bounded')

  // Once it reads again it finds what was buffered, then the close: 1013, try again later.
  rawSocket(slow.socket).resume()
  const closed = await slow.closed
  t.equal(closed.code, 1013)
  t.match(closed.reason, /slow consumer/)
  const received = slow.frames.filter((f) => f.code === 200)
  t.ok(received.length < MESSAGES, `it got ${received.length} of ${MESSAGES} before the close`)

  // Reconnect with since = the last mid it saw: the rest comes back, none lost, paced.
  const last = received.length > 0 ? received[received.length - 1]!.mid! : '0'
  const back = await TestClient.connect(wsUrl)
  const bound = back.next()
  back.send({ type: 'bind', uid: 'slow', since: last })
  t.match(await bound, { code: 201, mid: acked[acked.length - 1] })
  const rest: string[] = []
  while (rest.length < MESSAGES - received.length) rest.push((await back.nextCode(200)).mid!)
  t.same([...received.map((f) => f.mid!), ...rest], acked, 'every acked message, once, in order')
  t.ok(app.hub.registry.onlineUids().includes('slow'), 'the replay itself did not trip the bound')
  await Promise.all([back.close(), sender.close()])
})
