// Baseline: Socket.IO 4 doing duet's routing with events — what users pick instead.
//   client emits 'bind' {uid, ref?} with an ack callback -> ack(bind frame, code 201)
//   client emits 'send' {touid, msg, ref?} with an ack callback -> ack(frame, code 204),
//     and the recipient (if online) gets a 'message' event with the code-200 frame.
// The payloads are the same objects as in PROTOCOL.md. Routing uses a uid -> socket Map
// (like the ws baseline) rather than rooms: the faster of the two, so the harder to beat.
// WebSocket transport only, permessage-deflate off. PORT (default 3101), HOST (default 127.0.0.1).
import { createServer } from 'node:http'
import { Server, type Socket } from 'socket.io'

interface ClientFrame {
  uid?: unknown
  touid?: unknown
  msg?: unknown
  ref?: unknown
}
type Ack = (frame: object) => void

const port = Number(process.env.PORT ?? 3101)
const host = process.env.HOST ?? '127.0.0.1'

const byUid = new Map<string, Socket>()
let mid = 0

const http = createServer()
const io = new Server(http, { serveClient: false, transports: ['websocket'], perMessageDeflate: false })

io.on('connection', (socket) => {
  let bound: string | undefined
  socket.on('bind', (frame: ClientFrame, ack?: Ack) => {
    const uid = String(frame?.uid)
    bound = uid
    byUid.set(uid, socket)
    if (typeof ack === 'function') ack({ type: 'bind', error: false, code: 201, msg: '', uid, touid: '', mid: '0', ref: frame?.ref })
  })
  socket.on('send', (frame: ClientFrame, ack?: Ack) => {
    const from = bound ?? String(frame?.uid)
    const touid = String(frame?.touid)
    const m = String(++mid)
    const ts = Date.now()
    if (typeof ack === 'function') ack({ type: 'send', error: false, code: 204, msg: '', uid: '', touid, mid: m, ts, ref: frame?.ref })
    const peer = byUid.get(touid)
    if (peer !== undefined) {
      peer.emit('message', { type: 'send', error: false, code: 200, msg: frame?.msg, uid: from, touid, mid: m, ts })
    }
  })
  socket.on('disconnect', () => {
    if (bound !== undefined && byUid.get(bound) === socket) byUid.delete(bound)
  })
})

http.listen(port, host, () => {
  console.log(`socket.io baseline listening on ${host}:${port}`)
})

const stop = (): void => {
  void io.close(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
