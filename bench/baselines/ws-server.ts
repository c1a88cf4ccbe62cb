// Baseline: the smallest `ws` server doing duet's routing (PROTOCOL.md bind/send only).
// No store, no validation beyond JSON.parse. This is the practical ceiling for duet.
// PORT (default 3100), HOST (default 127.0.0.1). Endpoint /ws.
import { WebSocketServer, type WebSocket } from 'ws'

interface ClientFrame {
  type?: unknown
  uid?: unknown
  touid?: unknown
  msg?: unknown
  ref?: unknown
}

const port = Number(process.env.PORT ?? 3100)
const host = process.env.HOST ?? '127.0.0.1'

const byUid = new Map<string, WebSocket>()
const uidOf = new WeakMap<WebSocket, string>()
let mid = 0

const wss = new WebSocketServer({ port, host, path: '/ws', perMessageDeflate: false })

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    let frame: ClientFrame
    try {
      frame = JSON.parse(isBinary ? '' : String(data)) as ClientFrame
    } catch {
      ws.send('{"type":"","error":true,"code":401,"msg":"not JSON","uid":"","touid":""}')
      return
    }
    if (frame === null || typeof frame !== 'object') {
      ws.send('{"type":"","error":true,"code":401,"msg":"not an object","uid":"","touid":""}')
      return
    }
    if (frame.type === 'bind') {
      const uid = String(frame.uid)
      uidOf.set(ws, uid)
      byUid.set(uid, ws)
      ws.send(JSON.stringify({ type: 'bind', error: false, code: 201, msg: '', uid, touid: '', mid: '0', ref: frame.ref }))
    } else if (frame.type === 'send') {
      const from = uidOf.get(ws) ?? String(frame.uid)
      const touid = String(frame.touid)
      const m = String(++mid)
      const ts = Date.now()
      ws.send(JSON.stringify({ type: 'send', error: false, code: 204, msg: '', uid: '', touid, mid: m, ts, ref: frame.ref }))
      const peer = byUid.get(touid)
      if (peer !== undefined) {
        peer.send(JSON.stringify({ type: 'send', error: false, code: 200, msg: frame.msg, uid: from, touid, mid: m, ts }))
      }
    } else {
      ws.send(JSON.stringify({ type: String(frame.type), error: true, code: 404, msg: 'unknown type', uid: '', touid: '', ref: frame.ref }))
    }
  })
  ws.on('close', () => {
    const uid = uidOf.get(ws)
    if (uid !== undefined && byUid.get(uid) === ws) byUid.delete(uid)
  })
})

wss.on('listening', () => {
  console.log(`ws baseline listening on ${host}:${port}/ws`)
})

const stop = (): void => {
  for (const c of wss.clients) c.terminate()
  wss.close(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
