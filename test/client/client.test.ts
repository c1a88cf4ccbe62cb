// The typed client against the real server in-process: send/ack, live messages, join and
// exit, error codes, replacement, and a resend whose first ack was lost.
import t from 'tap'
import WebSocket from 'ws'
import { DuetClient, type ChatMessage, type DuetClientOptions } from '../../src/client/index.js'
import { startApp } from '../helpers/app.js'
import { signToken, TEST_SECRET } from '../helpers/tokens.js'

const fast = { initialDelayMs: 5, maxDelayMs: 50 }

interface Teardown {
  teardown(fn: () => unknown): void
}

function client(t: Teardown, wsUrl: string, uid: string, extra: Partial<DuetClientOptions> = {}): DuetClient {
  const c = new DuetClient({ url: wsUrl, uid, WebSocket, reconnect: fast, ...extra })
  t.teardown(() => c.close())
  return c
}

/** Resolves with the next `count` messages the client emits. */
function messages(c: DuetClient, count: number): Promise<ChatMessage[]> {
  const got: ChatMessage[] = []
  return new Promise((resolve) => {
    const off = c.on('message', (m) => {
      got.push(m)
      if (got.length === count) {
        off()
        resolve(got)
      }
    })
  })
}

t.test('send resolves with the mid; the peer gets it live with the same mid', async (t) => {
  const { wsUrl } = await startApp(t)
  const alice = client(t, wsUrl, 'alice')
  const bob = client(t, wsUrl, 'bob')
  t.match(await alice.connect(), { uid: 'alice', mid: '0', reset: false })
  await bob.connect()
  const arriving = messages(bob, 2)
  const mids = [await alice.send('bob', 'hello'), await alice.send('bob', 'again')]
  const got = await arriving
  t.same(got.map((m) => [m.mid, m.from, m.to, m.text, m.offline]), [
    [mids[0], 'alice', 'bob', 'hello', false],
    [mids[1], 'alice', 'bob', 'again', false],
  ])
  t.equal(bob.lastMid, mids[1])
})

t.test('messages sent while offline arrive at connect, marked offline', async (t) => {
  const { wsUrl } = await startApp(t)
  const alice = client(t, wsUrl, 'alice')
  await alice.connect()
  const mid = await alice.send('bob', 'while you were out')
  const bob = client(t, wsUrl, 'bob')
  const arriving = messages(bob, 1)
  t.match(await bob.connect(), { mid })
  t.match(await arriving, [{ mid, text: 'while you were out', offline: true }])
})

t.test('join and exit: events, and the unread count follows', async (t) => {
  const { url, wsUrl } = await startApp(t)
  const alice = client(t, wsUrl, 'alice')
  const bob = client(t, wsUrl, 'bob')
  await Promise.all([alice.connect(), bob.connect()])
  await alice.send('bob', 'one')
  const joined = bob.once('joined')
  await bob.join('alice')
  t.equal(await joined, 'alice')
  t.equal(bob.joined, 'alice')
  const unread = async (): Promise<number> => {
    const body = (await (await fetch(`${url}/users/bob/conversations`)).json()) as { conversations: Array<{ unread: number }> }
    return body.conversations[0]!.unread
  }
  t.equal(await unread(), 0, 'join marks read')
  const exited = bob.once('exited')
  await bob.exit()
  t.equal(await exited, 'alice')
  await alice.send('bob', 'two')
  t.equal(await unread(), 1, 'after exit, new messages are unread')
})

t.test('send rejects with the server code', async (t) => {
  const { wsUrl } = await startApp(t, { maxMessageLength: 5 })
  const alice = client(t, wsUrl, 'alice')
  await alice.connect()
  await t.rejects(alice.send('bob', 'far too long'), { name: 'DuetError', code: 413, type: 'send' })
  t.match(await alice.send('bob', 'ok'), /^\d+$/, 'the connection stays usable')
})

t.test('a newer connection of the same uid replaces this one for good', async (t) => {
  const { wsUrl } = await startApp(t)
  const first = client(t, wsUrl, 'alice')
  await first.connect()
  const replaced = first.once('error')
  const second = client(t, wsUrl, 'alice')
  await second.connect()
  t.match(await replaced, { code: 409 })
  t.equal(first.state, 'closed', 'no reconnect fight between two tabs')
  t.equal(second.state, 'bound')
})

t.test('stored but the ack lost: the resend gets the same mid, the peer gets it once', async (t) => {
  const { app, wsUrl } = await startApp(t)
  const alice = client(t, wsUrl, 'alice')
  const bob = client(t, wsUrl, 'bob')
  await Promise.all([alice.connect(), bob.connect()])
  const got: ChatMessage[] = []
  bob.on('message', (m) => got.push(m))

  // The first append succeeds, then alice's connection is cut before the ack goes out.
  const append = app.store.append.bind(app.store)
  let cut = false
  app.store.append = async (message) => {
    const result = await append(message)
    if (!cut) {
      cut = true
      const session = app.hub.registry.listSessions().find((s) => s.uid === 'alice')!
      app.hub.registry.kick(session.id)
    }
    return result
  }
  const reconnecting = alice.once('state')
  const mid = await alice.send('bob', 'exactly once')
  t.equal(await reconnecting, 'reconnecting', 'the connection was lost before the ack')
  const after = await alice.send('bob', 'next')
  t.ok(BigInt(after) > BigInt(mid))
  // bob receives in order, so once "next" is there, a duplicate would be there too.
  while (!got.some((m) => m.text === 'next')) await bob.once('message')
  t.same(got.map((m) => [m.mid, m.text]), [[mid, 'exactly once'], [after, 'next']])
})

t.test('with auth on: the token provider is asked on every bind; a refused token is final', async (t) => {
  const { app, wsUrl } = await startApp(t, { jwtSecret: TEST_SECRET })
  let asked = 0
  const token = (): Promise<string> => {
    asked++
    return signToken({ sub: 'alice' })
  }
  const alice = client(t, wsUrl, 'alice', { token })
  await alice.connect()
  const back = alice.once('bound')
  app.hub.registry.kick(app.hub.registry.listSessions().find((s) => s.uid === 'alice')!.id)
  await back
  t.equal(asked, 2, 'a fresh token for the re-bind')

  const mallory = client(t, wsUrl, 'mallory', { token: () => signToken({ sub: 'alice' }) })
  await t.rejects(mallory.connect(), { code: 406 })
  t.equal(mallory.state, 'closed', 'no retry with a token that cannot work')
})
