// SIGTERM during traffic: the server stops accepting, answers what is in flight, sends
// 503 and closes 1001, closes the store and exits 0 in bounded time; after a restart on
// the same SQLite file every message that was acked (204) is there. A shutdown stops a bind's
// replay between pages, and cuts an export a client reads too slowly.
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { eventually, within } from '../helpers/eventually.js'
import { gateCall } from '../helpers/gate.js'
import { startServer } from '../helpers/server-process.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'
import { upgradeStatus } from '../helpers/upgrade.js'

const SENDERS = 6
const WINDOW = 16
const ACKS_BEFORE_SIGTERM = 600

interface Acked {
  mid: string
  msg: string
}

/** Sends to `to` with WINDOW frames in flight until the connection closes; records every 204. */
async function sendUntilClosed(c: TestClient, to: string, acked: Acked[], other: Frame[]): Promise<void> {
  let n = 0
  let open = true
  void c.closed.then(() => (open = false))
  const one = async (): Promise<void> => {
    while (open) {
      const msg = `${to}:${n++}`
      let reply: Frame
      try {
        reply = await c.request({ type: 'send', touid: to, msg })
      } catch {
        return // closed before the reply: not acked, may or may not be stored
      }
      if (reply.code === 204) acked.push({ mid: reply.mid!, msg })
      else other.push(reply)
    }
  }
  await Promise.all(Array.from({ length: WINDOW }, one))
}

t.test('SIGTERM during traffic loses no acked message', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'duet-sigterm-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const env = { STORE_URL: `sqlite:${join(dir, 'duet.db')}`, RATE_LIMIT: '0', SHUTDOWN_TIMEOUT_MS: '8000' }

  const first = await startServer(t, env)
  const senders = await Promise.all(Array.from({ length: SENDERS }, (_, i) => TestClient.bound(first.wsUrl, `s${i}`)))
  const acked: Acked[][] = senders.map(() => [])
  const other: Frame[] = []
  const goodbyes = senders.map((c) => c.next((f) => f.code === 503 && f.ref === undefined))
  const traffic = senders.map((c, i) => sendUntilClosed(c, `r${i}`, acked[i]!, other))

  while (acked.reduce((sum, a) => sum + a.length, 0) < ACKS_BEFORE_SIGTERM) await new Promise((r) => setImmediate(r))
  const signalled = performance.now()
  first.child.kill('SIGTERM')

  for (const goodbye of goodbyes) t.match(await goodbye, { type: '', error: true, code: 503 }, 'a 503 frame before the close')
  const status = await upgradeStatus(first.wsUrl).catch((err: NodeJS.ErrnoException) => err.code)
  t.ok(status === 503 || status === 'ECONNREFUSED' || status === 'ECONNRESET', `no new connections while stopping (${status})`)
  for (const c of senders) t.equal((await c.closed).code, 1001, 'closed with 1001')
  await Promise.all(traffic)
  const exit = await first.exited
  const took = performance.now() - signalled
  t.same(exit, { code: 0, signal: null }, 'exited 0')
  t.ok(took < 8000, `exited in ${took.toFixed(0)} ms`)
  t.ok(first.logs.some((l) => l.msg === 'shutting down'), 'logged the shutdown')
  t.notOk(
    other.some((f) => f.code !== 503),
    `frames not acked were refused with 503 only (${other.length} refused: ${[...new Set(other.map((f) => f.code))].join(',')})`,
  )
  const total = acked.reduce((sum, a) => sum + a.length, 0)
  t.comment(`${total} messages acked before the server stopped`)

  const second = await startServer(t, env)
  for (let i = 0; i < SENDERS; i++) {
    const r = await TestClient.connect(second.wsUrl)
    const bound = r.next()
    r.send({ type: 'bind', uid: `r${i}`, since: '0' })
    const head = (await bound).mid!
    const stored = new Map<string, string>()
    let last = '0'
    while (last !== head) {
      const frame = await r.nextCode(200)
      stored.set(frame.mid!, frame.msg)
      last = frame.mid!
    }
    const missing = acked[i]!.filter((a) => stored.get(a.mid) !== a.msg)
    t.same(missing, [], `r${i}: all ${acked[i]!.length} acked messages are stored (${stored.size} in the store)`)
    await r.close()
  }
  second.child.kill('SIGTERM')
  t.match(await second.exited, { code: 0 })
})

t.test('a shutdown stops a bind replay between pages: the rest stays for the next bind', async (t) => {
  const { app, wsUrl } = await startApp(t, { rateLimit: 0 })
  const alice = await TestClient.bound(wsUrl, 'alice')
  // Four pages of offline messages for bob (REPLAY_PAGE is 500).
  for (let i = 0; i < 2000; i += 200) await Promise.all(Array.from({ length: 200 }, (_, j) => alice.request({ type: 'send', touid: 'bob', msg: `m${i + j}` })))
  const secondPage = gateCall(app.store, 'undelivered', 2)
  const bob = await TestClient.bound(wsUrl, 'bob')
  await secondPage.entered
  const closing = app.close()
  await eventually(() => app.hub.registry.closing, 'the shutdown to begin')
  secondPage.release()
  await closing
  t.equal((await bob.closed).code, 1001, 'closed as the server goes away')
  const replayed = [...bob.frames, ...alice.frames].filter((f) => f.code === 200)
  t.equal(replayed.length, 500, `the first page only (${replayed.length})`)
  t.ok(
    bob.frames.some((f) => f.code === 503),
    'and the goodbye',
  )
})

t.test('a client reading an export slowly does not hold the shutdown: its response is cut', async (t) => {
  const { app, url, wsUrl } = await startApp(t, { rateLimit: 0 })
  const alice = await TestClient.bound(wsUrl, 'alice')
  // More than the socket buffers hold: about 8 MB of NDJSON.
  const text = 'x'.repeat(2000)
  for (let i = 0; i < 4000; i += 200) await Promise.all(Array.from({ length: 200 }, () => alice.request({ type: 'send', touid: 'bob', msg: text })))
  await alice.close()
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(`${url}/users/bob/export`, resolve).once('error', reject))
  t.equal(response.statusCode, 200)
  response.pause() // and never read
  const ended = new Promise<boolean>((resolve) => {
    response.once('end', () => resolve(true))
    response.once('error', () => resolve(false))
    response.once('aborted', () => resolve(false))
  })
  await within(app.close(), 8000, 'the shutdown')
  response.resume()
  t.equal(await ended, false, 'the export was cut, not finished')
})
