// A message stored as going to a live connection on another node, whose push that node never
// hears (its presence outlived it), still gets its webhook event: written by the sending node
// once the broker says nobody heard the push. Two nodes on the machine's PostgreSQL and Redis.
import pino from 'pino'
import t from 'tap'
import { createCluster } from '../../src/cluster/create-cluster.js'
import { REDIS_URL } from '../cluster/redis-helpers.js'
import { twoNodesOnRedis } from '../cluster/two-nodes.js'
import { TestClient } from '../helpers/ws-client.js'
import { serverSend, webhookConfig } from './common.js'
import { eventOf, Receiver } from './receiver.js'

t.test('a push lost to a node that is gone writes the event, and the message waits for the bind', async (t) => {
  const receiver = await Receiver.start(t)
  const [a] = await twoNodesOnRedis(webhookConfig(receiver))(t)
  // A node whose presence shows bob bound there, and that no longer hears its channel (its hub
  // is gone while its presence lease still runs): pushes to it are lost.
  const ghostNode = await createCluster({ redisUrl: REDIS_URL, nodeId: 'ghost-node', prefix: a!.app.config.redisPrefix, logger: pino({ level: 'silent' }) })
  t.teardown(() => ghostNode.close())
  const ghost = { id: 'ghost-session', uid: 'bob', node: 'ghost-node', joined: null, connectedAt: new Date().toISOString(), remoteAddress: '127.0.0.1' }
  await ghostNode.presence.add(ghost, false)
  t.equal((await a!.app.cluster.presence.sessionsOf('bob')).length, 1, 'node a sees bob on the other node')
  const sent = await serverSend(a!.url, { from: 'system', to: 'bob', msg: 'to a node that is gone' })
  t.equal(sent.status, 201)
  const request = await receiver.nth(1)
  t.match(eventOf(request).message, { mid: sent.mid, from: 'system', to: 'bob', msg: 'to a node that is gone', ts: sent.ts })

  await ghostNode.presence.remove(ghost)
  const bob = await TestClient.bound(a!.wsUrl, 'bob')
  t.match(await bob.nextCode(200), { mid: sent.mid, msg: 'to a node that is gone' }, 'kept undelivered: it comes with the bind')
  t.equal(receiver.requests.length, 1, 'one event')
})
