// @fastify/websocket with our limits. Shutdown goes through the hub first, so clients
// get a 503 frame and close 1001 only after in-flight store writes finished; sockets that
// do not finish the closing handshake within CLOSE_GRACE_MS are terminated, so a dead
// client cannot hold the shutdown open.
import fp from 'fastify-plugin'
import websocket, { type WebsocketPluginOptions } from '@fastify/websocket'
import { WebSocket } from 'ws'
import { FlushingWebSocket } from '../src/transport/flushing-websocket.js'

const CLOSE_GRACE_MS = 2000
const socketClass: typeof WebSocket = FlushingWebSocket

export default fp(
  async (app) => {
    await app.register(websocket, {
      options: {
        maxPayload: app.config.maxPayloadBytes,
        perMessageDeflate: app.config.wsDeflate,
        // Each connection a FlushingWebSocket (see batched-writes.ts). The option's type, seen
        // through @fastify/websocket's CommonJS types, wants ws's namespace members too, which
        // a subclass inherits at run time but not in @types/ws: hence the cast, after a check
        // that it is a WebSocket class.
        WebSocket: socketClass as unknown as NonNullable<WebsocketPluginOptions['options']>['WebSocket'],
      },
      preClose: async function () {
        await app.hub.shutdown()
        const wss = app.websocketServer
        await allClosed(wss.clients, CLOSE_GRACE_MS)
        for (const socket of wss.clients) socket.terminate()
        await new Promise<void>((resolve) => wss.close(() => resolve()))
      },
    })
  },
  { name: 'websocket', dependencies: ['config', 'hub'] },
)

/** Resolves when every socket has closed, or after `ms`. */
function allClosed(sockets: Set<WebSocket>, ms: number): Promise<void> {
  const open = [...sockets].filter((s) => s.readyState !== s.CLOSED)
  if (open.length === 0) return Promise.resolve()
  return new Promise<void>((resolve) => {
    let left = open.length
    const timer = setTimeout(resolve, ms)
    for (const socket of open) {
      socket.once('close', () => {
        if (--left === 0) {
          clearTimeout(timer)
          resolve()
        }
      })
    }
  })
}
