// Logs: one line per connection open and close and per error reply, each with the
// session id and uid; the text of a chat message never appears at info level.
import { Writable } from 'node:stream'
import t from 'tap'
import { build, loggerOptions } from '../app.js'
import { loadConfig } from '../src/config/load.js'
import { signToken } from './helpers/tokens.js'
import { TestClient } from './helpers/ws-client.js'

type Line = Record<string, unknown>

/** A log destination that parses each line and lets a test await a matching one. */
class LogCapture extends Writable {
  readonly lines: Line[] = []
  private waiters: Array<{ match: (l: Line) => boolean; resolve: (l: Line) => void }> = []

  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    for (const text of chunk.toString().split('\n').filter(Boolean)) {
      const line = JSON.parse(text) as Line
      this.lines.push(line)
      this.waiters = this.waiters.filter((w) => (w.match(line) ? (w.resolve(line), false) : true))
    }
    done()
  }

  next(match: (l: Line) => boolean): Promise<Line> {
    const found = this.lines.find(match)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve) => this.waiters.push({ match, resolve }))
  }
}

t.test('connection and error lines carry session and uid; message text stays out', async (t) => {
  const logs = new LogCapture()
  const app = await build({ env: {}, config: { storeUrl: 'memory:', port: 0 }, logger: { level: 'info', stream: logs } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const wsUrl = `ws://127.0.0.1:${address.port}/ws`

  const secret = `secret text ${Math.random()}`
  const alice = await TestClient.bound(wsUrl, 'alice')
  const bob = await TestClient.bound(wsUrl, 'bob')
  await alice.request({ type: 'send', touid: 'bob', msg: secret })
  await bob.nextCode(200)
  await alice.request({ type: 'join' })

  const opened = await logs.next((l) => l.msg === 'connection open')
  t.match(opened, { session: String, level: 30 })
  const error = await logs.next((l) => l.msg === 'error reply')
  t.match(error, { session: String, uid: 'alice', code: 400, type: 'join' })

  await alice.close()
  const closed = await logs.next((l) => l.msg === 'connection closed' && l.uid === 'alice')
  t.match(closed, { session: String, uid: 'alice' })
  await bob.close()
  await logs.next((l) => l.msg === 'connection closed' && l.uid === 'bob')

  const info = logs.lines.filter((l) => (l.level as number) >= 30)
  t.notOk(JSON.stringify(info).includes(secret), 'no message text at info or above')
})

t.test('a client sending malformed frames under the rate limit gets ten info lines, then debug ones, counted at close', async (t) => {
  const logs = new LogCapture()
  const app = await build({ env: {}, config: { storeUrl: 'memory:', port: 0 }, logger: { level: 'debug', stream: logs } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const mallory = await TestClient.bound(`ws://127.0.0.1:${address.port}/ws`, 'mallory')
  for (let i = 0; i < 30; i++) mallory.send('{')
  await mallory.request({ type: 'exit' })
  await mallory.close()
  const closed = await logs.next((l) => l.msg === 'connection closed' && l.uid === 'mallory')
  t.match(closed, { errorReplies: 30, level: 30 })
  const lines = logs.lines.filter((l) => l.msg === 'error reply' && l.uid === 'mallory')
  t.equal(lines.length, 30, 'every one is logged')
  t.equal(lines.filter((l) => l.level === 30).length, 10, 'the first ten at info')
  t.equal(lines.filter((l) => l.level === 20).length, 20, 'the rest at debug')
})

t.test('pretty logs with LOG_PRETTY, JSON otherwise', async (t) => {
  const pretty = loggerOptions(loadConfig({ LOG_PRETTY: 'true' }))
  t.match(pretty, { transport: { target: 'pino-pretty' } })
  t.ok(import.meta.resolve('pino-pretty'), 'pino-pretty is installed')
  const json = loggerOptions(loadConfig({ LOG_PRETTY: 'false' }))
  t.notOk((json as { transport?: unknown }).transport)
})

t.test('a JWT_SECRET shorter than 32 characters starts, with a warning, and verifies tokens', async (t) => {
  const secret = 'short-secret'
  const logs = new LogCapture()
  const app = await build({ env: {}, config: { storeUrl: 'memory:', jwtSecret: secret }, logger: { level: 'info', stream: logs } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const warning = await logs.next((l) => l.level === 40 && /JWT_SECRET has 12 characters/.test(String(l.msg)))
  t.match(warning.msg, /can be guessed/)
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const token = await signToken({ sub: 'amy' }, new TextEncoder().encode(secret))
  const amy = await TestClient.bound(`ws://127.0.0.1:${address.port}/ws`, 'amy', { token })
  await amy.close()
})
