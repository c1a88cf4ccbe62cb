// Liveness: a client that stops answering pings is terminated and its presence removed;
// one that answers stays connected across many heartbeats.
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { eventually } from '../helpers/eventually.js'
import { TestClient } from '../helpers/ws-client.js'

t.test('a connection that misses a pong is terminated and leaves presence', async (t) => {
  const { app, wsUrl } = await startApp(t, { heartbeatMs: 50 })
  const alive = await TestClient.bound(wsUrl, 'alive')
  const dead = await TestClient.connect(wsUrl, { autoPong: false })
  const bound = dead.next()
  dead.send({ type: 'bind', uid: 'dead' })
  t.match(await bound, { code: 201 })
  t.same(app.hub.registry.onlineUids().sort(), ['alive', 'dead'])

  let alivePings = 0
  alive.socket.on('ping', () => alivePings++)
  let deadPings = 0
  dead.socket.on('ping', () => deadPings++)

  const { code } = await dead.closed
  t.equal(code, 1006, 'terminated, no closing handshake')
  t.ok(deadPings >= 1 && deadPings <= 2, `terminated after the first missed pong (${deadPings} pings)`)
  // The server's 'close' for that socket may run just after the client saw it.
  await eventually(() => !app.hub.registry.onlineUids().includes('dead'), 'the server to drop the dead connection')
  t.same(app.hub.registry.onlineUids(), ['alive'], 'presence removed')

  // The live client answered every ping and is still served.
  while (alivePings < 5) await new Promise((resolve) => alive.socket.once('ping', resolve))
  t.match(await alive.request({ type: 'exit' }), { code: 203 }, 'still connected after 5 heartbeats')
  t.match(await alive.request({ type: 'send', touid: 'dead', msg: 'you were gone' }), { code: 204 })
  await alive.close()
})
