// The opt-in signals across two nodes in this process, on the machine's Redis (a key prefix of
// their own) and PostgreSQL (a schema of their own): receipts, typing, presence changes and
// carbons reach a connection on the other node, and only one that asked for them; then two
// real server processes, one SIGKILLed: its users turn offline for watchers on the other
// within the presence lease.
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { dropSchema, freshSchema, PG_URL } from '../helpers/postgres.js'
import { startServer } from '../helpers/server-process.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'
import { deleteKeys, freshPrefix, REDIS_URL } from './redis-helpers.js'

const prefix = freshPrefix()
const schema = freshSchema()
t.teardown(async () => {
  await deleteKeys(prefix)
  await dropSchema(schema)
})

/** Nodes a and b, closed when `t` ends. */
const twoNodes = (t: Parameters<typeof startApp>[0]) =>
  Promise.all(
    ['a', 'b'].map((nodeId) =>
      startApp(t, { storeUrl: `${PG_URL}?schema=${schema}`, redisUrl: REDIS_URL, redisPrefix: prefix, nodeId, multiDevice: true, rateLimit: 0 }),
    ),
  )

/** Everything that came before the reply to a fresh request: a round trip as a fence. */
async function fence(c: TestClient): Promise<Frame[]> {
  const reply = await c.request({ type: 'exit' })
  if (reply.code !== 203) throw new Error(`fence: ${JSON.stringify(reply)}`)
  return c.frames.splice(0)
}

t.test('receipts, typing and carbons reach the connections that asked for them on the other node', async (t) => {
  const [a, b] = await twoNodes(t)
  const alice = await TestClient.bound(a.wsUrl, 'alice', { features: ['receipts', 'carbons'] })
  const aliceOnB = await TestClient.bound(b.wsUrl, 'alice', { features: ['receipts', 'carbons'] })
  const seedAliceOnB = await TestClient.bound(b.wsUrl, 'alice')
  const bob = await TestClient.bound(b.wsUrl, 'bob', { features: ['typing'] })
  const seedBobOnA = await TestClient.bound(a.wsUrl, 'bob')

  alice.send({ type: 'typing', touid: 'bob' })
  t.match(await bob.nextCode(206), { uid: 'alice', touid: 'bob' }, 'typing crosses nodes')

  const ack = await alice.request({ type: 'send', touid: 'bob', msg: 'hello across' })
  t.match(await bob.nextCode(200), { mid: ack.mid })
  t.match(await aliceOnB.nextCode(200), { uid: 'alice', touid: 'bob', mid: ack.mid }, 'the carbon crosses nodes')
  for (const client of [alice, aliceOnB]) {
    t.match(await client.nextCode(205), { msg: 'delivered', uid: 'bob', touid: 'alice', mid: ack.mid })
  }
  await bob.request({ type: 'join', touid: 'alice' })
  for (const client of [alice, aliceOnB]) t.match(await client.nextCode(205), { msg: 'read', mid: ack.mid })

  t.same(
    (await fence(seedAliceOnB)).filter((f) => f.code === 205 || f.code === 200),
    [],
    'no receipts and no carbons for a connection without the features',
  )
  t.same((await fence(seedBobOnA)).filter((f) => f.code === 206), [], 'no typing for a connection without the feature')
  await Promise.all([alice.close(), aliceOnB.close(), seedAliceOnB.close(), bob.close(), seedBobOnA.close()])
})

t.test('presence changes on one node reach watchers on the other', async (t) => {
  const [a, b] = await twoNodes(t)
  const watcher = await TestClient.bound(a.wsUrl, 'wendy', { features: ['presence'] })
  t.match(await watcher.request({ type: 'watch', touid: 'victor' }), { code: 207, msg: 'offline' })
  const phone = await TestClient.bound(b.wsUrl, 'victor')
  t.match(await watcher.nextCode(207), { msg: 'online', uid: 'victor', touid: 'wendy' })
  // A second connection, then the first one gone: still online, nothing to tell.
  const laptop = await TestClient.bound(a.wsUrl, 'victor')
  await phone.close()
  await laptop.close()
  t.match(await watcher.nextCode(207), { msg: 'offline', uid: 'victor' })
  t.same(watcher.frames.filter((f) => f.code === 207), [], 'no flapping while victor stayed online')
  await watcher.close()
})

t.test('a SIGKILLed node: its users turn offline for watchers elsewhere within the presence lease', async (t) => {
  const killPrefix = freshPrefix()
  t.teardown(() => deleteKeys(killPrefix))
  const env = (node: string): Record<string, string> => ({
    REDIS_URL,
    REDIS_PREFIX: killPrefix,
    STORE_URL: `${PG_URL}?schema=${schema}`,
    NODE_ID: node,
    PRESENCE_LEASE_MS: '1500',
    RATE_LIMIT: '0',
  })
  const [n1, n2] = await Promise.all([startServer(t, env('k1')), startServer(t, env('k2'))])
  const watcher = await TestClient.bound(n1.wsUrl, 'wendy', { features: ['presence'] })
  const victor = await TestClient.bound(n2.wsUrl, 'victor')
  t.match(await watcher.request({ type: 'watch', touid: 'victor' }), { code: 207, msg: 'online' })
  const killedAt = Date.now()
  n2.child.kill('SIGKILL')
  await n2.exited
  t.match(await watcher.nextCode(207), { msg: 'offline', uid: 'victor' })
  const took = Date.now() - killedAt
  t.ok(took < 1500 * 2 + 1000, `offline within the lease and a refresh (${took} ms)`)
  await victor.closed
  await watcher.close()
})
