// @fastify/websocket with our limits. Shutdown goes through the hub first, so clients
// get a 503 frame and close 1001 only after in-flight store writes finished.
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'

export default fp(
  async (app) => {
    await app.register(websocket, {
      options: {
        maxPayload: app.config.maxPayloadBytes,
        perMessageDeflate: false,
      },
      preClose: async function () {
        await app.hub.shutdown()
        await new Promise<void>((resolve) => app.websocketServer.close(() => resolve()))
      },
    })
  },
  { name: 'websocket', dependencies: ['config', 'hub'] },
)
