// An acked message survives SIGKILL of the server right after the ack (SQLite default store).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startServer } from './helpers/server-process.js'
import { TestClient, type Frame } from './helpers/ws-client.js'

t.test('SIGKILL right after the ack loses nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'duet-crash-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const env = { STORE_URL: `sqlite:${join(dir, 'duet.db')}` }

  const first = await startServer(t, env)
  const alice = await TestClient.bound(first.wsUrl, 'alice')
  const acks = []
  for (let i = 0; i < 30; i++) acks.push(alice.request({ type: 'send', touid: 'bob', msg: `m${i}` }))
  const acked = await Promise.all(acks)
  first.child.kill('SIGKILL')
  t.match(await first.exited, { signal: 'SIGKILL' })

  const second = await startServer(t, env)
  const bob = await TestClient.connect(second.wsUrl)
  bob.send({ type: 'bind', uid: 'bob' })
  t.match(await bob.next(), { code: 201, mid: acked[acked.length - 1]!.mid })
  for (const [i, ack] of acked.entries()) {
    t.match(await bob.next(), { code: 200, msg: `m${i}`, mid: ack.mid, offline: true }, `m${i} survived`)
  }
  const history = (await (await fetch(`${second.url}/users/bob/conversations/alice/messages?limit=200`)).json()) as {
    messages: unknown[]
  }
  t.equal(history.messages.length, 30, 'history has every acked message')
  // The conversation list is written about once a second: what the killed run had not written
  // is caught up when the store opens.
  const list = (await (await fetch(`${second.url}/users/bob/conversations`)).json()) as { conversations: unknown[] }
  t.match(list.conversations, [{ peer: 'alice', lastMessage: { mid: acked[acked.length - 1]!.mid, msg: 'm29' } }])
  t.equal(list.conversations.length, 1)
  await bob.close()
})

/**
 * A message pushed live to bob, then the server stopped by `signal` and restarted: bob binds
 * again and exits, and gets back what came after the 201, up to the exit's reply (which
 * follows the bind's backlog).
 */
async function pushedThenStopped(t: Test, signal: 'SIGKILL' | 'SIGTERM'): Promise<{ mid: string; afterBind: Frame[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'duet-crash-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const env = { STORE_URL: `sqlite:${join(dir, 'duet.db')}` }
  const first = await startServer(t, env)
  const alice = await TestClient.bound(first.wsUrl, 'alice')
  const bob = await TestClient.bound(first.wsUrl, 'bob')
  const ack = await alice.request({ type: 'send', touid: 'bob', msg: 'live' })
  // Received here; a push the kill cut off would look the same to the server: stored as pushed.
  t.match(await bob.nextCode(200), { msg: 'live', mid: ack.mid })
  first.child.kill(signal)
  t.match(await first.exited, signal === 'SIGKILL' ? { signal } : { code: 0 })

  const second = await startServer(t, env)
  const again = await TestClient.connect(second.wsUrl)
  t.teardown(() => again.close())
  again.send({ type: 'bind', uid: 'bob' })
  again.send({ type: 'exit' })
  t.match(await again.next(), { code: 201, mid: ack.mid })
  const afterBind: Frame[] = []
  while (afterBind.at(-1)?.code !== 203) afterBind.push(await again.next())
  return { mid: ack.mid!, afterBind }
}

t.test('SIGKILL: what was pushed in the last seconds before it is pushed again at the next bind', async (t) => {
  const { mid, afterBind } = await pushedThenStopped(t, 'SIGKILL')
  t.match(afterBind, [{ code: 200, msg: 'live', mid, offline: true }, { code: 203 }], 'pushed again, same mid')
})

t.test('a clean stop (SIGTERM) pushes nothing again', async (t) => {
  const { afterBind } = await pushedThenStopped(t, 'SIGTERM')
  t.match(afterBind, [{ code: 203 }], 'no push after the 201')
  t.equal(afterBind.length, 1)
})
