// Baseline: the smallest `ws` server doing duet's routing (PROTOCOL.md bind/send only).
// No store, no validation beyond JSON.parse. This is the practical ceiling for duet.
// PORT (default 3100), HOST (default 127.0.0.1). Endpoint /ws.
// BATCHED=1 ("ws-batched" in the bench): each socket is corked for the event-loop turn (the
// first frame of a turn corks it, one setImmediate uncorks every corked socket), so a
// connection gets one writev per turn, framed by ws: the limit for a server that batches its
// writes as duet does (src/transport/batched-writes.ts).
import type { Duplex } from 'node:stream'
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

const batched = process.env.BATCHED === '1'

const byUid = new Map<string, WebSocket>()
const uidOf = new WeakMap<WebSocket, string>()
const socketOf = new WeakMap<WebSocket, Duplex>()
let mid = 0

let corked: Duplex[] = []
const uncorkAll = (): void => {
  const sockets = corked
  corked = []
  for (const socket of sockets) socket.uncork()
}

/** ws.send; with BATCHED, inside this turn's cork of the connection's socket. */
function send(ws: WebSocket, data: string): void {
  const socket = batched ? socketOf.get(ws) : undefined
  if (socket !== undefined && socket.writableCorked === 0) {
    if (corked.length === 0) setImmediate(uncorkAll)
    socket.cork()
    corked.push(socket)
  }
  ws.send(data)
}

const wss = new WebSocketServer({ port, host, path: '/ws', perMessageDeflate: false })

wss.on('connection', (ws, request) => {
  socketOf.set(ws, request.socket)
  ws.on('message', (data, isBinary) => {
    let frame: ClientFrame
    try {
      frame = JSON.parse(isBinary ? '' : String(data)) as ClientFrame
    } catch {
      send(ws, '{"type":"","error":true,"code":401,"msg":"not JSON","uid":"","touid":""}')
      return
    }
    if (frame === null || typeof frame !== 'object') {
      send(ws, '{"type":"","error":true,"code":401,"msg":"not an object","uid":"","touid":""}')
      return
    }
    if (frame.type === 'bind') {
      const uid = String(frame.uid)
      uidOf.set(ws, uid)
      byUid.set(uid, ws)
      send(ws, JSON.stringify({ type: 'bind', error: false, code: 201, msg: '', uid, touid: '', mid: '0', ref: frame.ref }))
    } else if (frame.type === 'send') {
      const from = uidOf.get(ws) ?? String(frame.uid)
      const touid = String(frame.touid)
      const m = String(++mid)
      const ts = Date.now()
      send(ws, JSON.stringify({ type: 'send', error: false, code: 204, msg: '', uid: '', touid, mid: m, ts, ref: frame.ref }))
      const peer = byUid.get(touid)
      if (peer !== undefined) {
        send(peer, JSON.stringify({ type: 'send', error: false, code: 200, msg: frame.msg, uid: from, touid, mid: m, ts }))
      }
    } else {
      send(ws, JSON.stringify({ type: String(frame.type), error: true, code: 404, msg: 'unknown type', uid: '', touid: '', ref: frame.ref }))
    }
  })
  ws.on('close', () => {
    const uid = uidOf.get(ws)
    if (uid !== undefined && byUid.get(uid) === ws) byUid.delete(uid)
  })
})

wss.on('listening', () => {
  console.log(`ws${batched ? '-batched' : ''} baseline listening on ${host}:${port}/ws`)
})

const stop = (): void => {
  for (const c of wss.clients) c.terminate()
  wss.close(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
