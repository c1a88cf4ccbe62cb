// /ws: adapts each WebSocket to a hub Session. Parsing and semantics live in the hub.
import type { FastifyPluginAsync } from 'fastify'
import { Code } from '../src/protocol/codes.js'

const wsRoute: FastifyPluginAsync = async (app) => {
  const { hub } = app
  app.get('/ws', { websocket: true, schema: { hide: true } }, (socket, request) => {
    const session = hub.open(socket, request.ip)
    const log = request.log.child({ session: session.id })
    log.info({ remoteAddress: request.ip }, 'connection open')

    socket.on('message', (data, isBinary) => {
      if (isBinary) {
        hub.refuse(session, Code.BAD_FRAME, 'binary frames are not supported: send JSON text')
        return
      }
      hub.handle(session, data.toString())
    })
    socket.on('close', (code) => {
      log.info({ uid: session.uid, code }, 'connection closed')
      hub.close(session)
    })
    socket.on('error', (err) => log.warn({ err, uid: session.uid }, 'connection error'))
  })
}

export default wsRoute
