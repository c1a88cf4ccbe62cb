// Each conversation entry says whether the peer is online now (a live bound connection).
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'

t.test('online follows the peer connecting and leaving', async (t) => {
  const { app, url, wsUrl } = await startApp(t)
  const online = async (): Promise<Record<string, boolean>> => {
    const body = (await (await fetch(`${url}/users/alice/conversations`)).json()) as {
      conversations: Array<{ peer: string; online: boolean }>
    }
    return Object.fromEntries(body.conversations.map((c) => [c.peer, c.online]))
  }
  const alice = await TestClient.bound(wsUrl, 'alice')
  const bob = await TestClient.bound(wsUrl, 'bob')
  await alice.request({ type: 'send', touid: 'bob', msg: 'hi' })
  await alice.request({ type: 'send', touid: 'carol', msg: 'hi' })
  t.same(await online(), { bob: true, carol: false })
  // Disconnect bob server-side: synchronous, so the next request sees it.
  app.hub.registry.kick(app.hub.registry.listSessions().find((s) => s.uid === 'bob')!.id)
  await bob.closed
  t.same(await online(), { bob: false, carol: false })
  await alice.close()
})
