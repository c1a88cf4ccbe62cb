// A flooding client in its own process, so its sending costs the test process nothing:
//   node flooder.js <wsUrl> <uid>
// Binds, prints "bound", then sends `send` frames as fast as its socket drains until
// SIGTERM, and prints {"sent":N,"replies":M,"acks":A} on exit. Replies are counted, not
// parsed; acks are the replies that carry code 204 (the message was stored).
// When the server closes the socket it adds the close code and how long the flood lasted
// (ms from the first flood frame to the close), so a rate-limit bound can be computed.
import WebSocket from 'ws'

const [url, uid] = process.argv.slice(2)
if (url === undefined || uid === undefined) throw new Error('usage: flooder <wsUrl> <uid>')

const socket = new WebSocket(url)
let sent = 0
let replies = 0
let acks = 0
let bound = false
let floodStart = 0
const frame = JSON.stringify({ type: 'send', touid: `${uid}-sink`, msg: 'flood '.repeat(10) })

function pump(): void {
  if (socket.readyState !== WebSocket.OPEN) return
  for (let i = 0; i < 200 && socket.bufferedAmount < 256 * 1024; i++) {
    socket.send(frame)
    sent++
  }
  setImmediate(pump)
}

socket.on('open', () => socket.send(JSON.stringify({ type: 'bind', uid })))
socket.on('message', (data) => {
  replies++
  if (String(data).includes('"code":204')) acks++
  if (!bound) {
    bound = true
    process.stdout.write('bound\n')
    floodStart = performance.now()
    pump()
  }
})
socket.on('close', (code) => {
  process.stdout.write(`${JSON.stringify({ sent, replies, acks, closed: code, elapsedMs: performance.now() - floodStart })}\n`)
  process.exit(0)
})
process.on('SIGTERM', () => {
  process.stdout.write(`${JSON.stringify({ sent, replies, acks })}\n`)
  process.exit(0)
})
