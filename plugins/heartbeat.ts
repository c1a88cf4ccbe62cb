// Liveness: one timer pings every socket each HEARTBEAT_MS; a socket that has not answered
// the previous ping is terminated, and its 'close' removes its presence from the hub.
import fp from 'fastify-plugin'
import type { WebSocket } from 'ws'

export default fp(
  async (app) => {
    const interval = app.config.heartbeatMs
    if (interval === 0) return
    const wss = app.websocketServer
    const awaitingPong = new WeakSet<WebSocket>()
    const onPong = function (this: WebSocket): void {
      awaitingPong.delete(this)
    }
    wss.on('connection', (socket: WebSocket) => socket.on('pong', onPong))

    const timer = setInterval(() => {
      let terminated = 0
      for (const socket of wss.clients) {
        if (awaitingPong.has(socket)) {
          socket.terminate()
          terminated++
          continue
        }
        awaitingPong.add(socket)
        socket.ping()
      }
      if (terminated > 0) app.log.info({ terminated }, 'heartbeat: terminated connections that missed a pong')
    }, interval)
    timer.unref()
    app.addHook('preClose', async () => clearInterval(timer))
  },
  { name: 'heartbeat', dependencies: ['config', 'websocket'] },
)
