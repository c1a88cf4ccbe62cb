// The admin's send and erase across two nodes in this process, on the machine's Redis and
// PostgreSQL: a message sent through one node reaches its recipient on the other live; an
// erase through one node closes the user's connection on the other (4003).
import t from 'tap'
import { TestClient } from '../helpers/ws-client.js'
import { twoNodesOnRedis } from './two-nodes.js'

/** Nodes a and b, closed when `t` ends. */
const twoNodes = twoNodesOnRedis()

t.test('send and erase through one node reach the other', async (t) => {
  const [a, b] = await twoNodes(t)
  const bob = await TestClient.bound(b!.wsUrl, 'bob')
  const sent = await fetch(`${a!.url}/admin/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ from: 'system', to: 'bob', msg: 'across nodes' }),
  })
  t.equal(sent.status, 201)
  const { mid } = (await sent.json()) as { mid: string }
  t.match(await bob.nextCode(200), { uid: 'system', msg: 'across nodes', mid, offline: undefined }, 'pushed live by the other node')

  const erased = await fetch(`${a!.url}/admin/users/bob`, { method: 'DELETE' })
  t.same(await erased.json(), { deleted: 1 })
  t.match(await bob.closed, { code: 4003 }, 'closed on the other node')
  t.same(await a!.app.store.userMessages('bob', '0', 10), [])
})
