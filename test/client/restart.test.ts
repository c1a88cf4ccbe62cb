// Across a real server crash and restart (SQLite file, same port): the client reconnects,
// resends what was not acked, resumes from its last mid, and shows every message once.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import WebSocket from 'ws'
import { DuetClient, type ChatMessage } from '../../src/client/index.js'
import { startServer } from '../helpers/server-process.js'
import { freePort } from '../helpers/free-port.js'

t.test('SIGKILL and restart: nothing lost, nothing twice', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'duet-client-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const env = { STORE_URL: `sqlite:${join(dir, 'duet.db')}`, PORT: String(await freePort()) }

  const first = await startServer(t, env)
  const options = { url: first.wsUrl, WebSocket, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } }
  const alice = new DuetClient({ ...options, uid: 'alice' })
  const bob = new DuetClient({ ...options, uid: 'bob' })
  t.teardown(() => {
    alice.close()
    bob.close()
  })
  const got: ChatMessage[] = []
  bob.on('message', (m) => got.push(m))
  const received = async (count: number): Promise<void> => {
    while (got.length < count) await bob.once('message')
  }
  await Promise.all([alice.connect(), bob.connect()])

  const before: string[] = []
  for (let i = 0; i < 5; i++) before.push(await alice.send('bob', `m${i}`))
  await received(5)

  const down = Promise.all([alice.once('state'), bob.once('state')])
  first.child.kill('SIGKILL')
  await first.exited
  t.same(await down, ['reconnecting', 'reconnecting'])
  // Sent while the server is down: queued, then sent after the re-bind.
  const during = Array.from({ length: 5 }, (_, i) => alice.send('bob', `m${i + 5}`))

  const bobBack = bob.once('bound')
  await startServer(t, env)
  const mids = [...before, ...(await Promise.all(during))]
  t.match(await bobBack, { uid: 'bob', reset: false })
  // A last message after the rest: were anything delivered twice, it would be before this one.
  mids.push(await alice.send('bob', 'last'))
  await received(11)

  const texts = [...Array.from({ length: 10 }, (_, i) => `m${i}`), 'last']
  t.same(got.map((m) => m.text), texts, 'every message once, in order')
  t.same(got.map((m) => m.mid), mids, 'with the mids the sender was acked')
  t.equal(bob.lastMid, mids[10])
})
