// Batched writes: every frame a turn sends a connection arrives, in order and intact, in one
// write; a close writes what is pending first; ws keeps the frames it must transform itself.
import { createRequire } from 'node:module'
import t from 'tap'
import { BatchedConnection, BatchedWrites, type ByteStream, type FrameSocket } from '../../src/transport/batched-writes.js'

class FakeSocket implements FrameSocket {
  readyState = 1
  extensions = ''
  bufferedAmount = 0
  beforeClose: (() => void) | null = null
  readonly log: string[] = []
  send(data: string): void {
    this.log.push(`send ${data}`)
  }
  /** As FlushingWebSocket does. */
  close(code: number): void {
    this.beforeClose?.()
    this.log.push(`close ${code}`)
  }
}

class Capture implements ByteStream {
  readonly writes: Buffer[] = []
  write(data: Uint8Array): boolean {
    this.writes.push(Buffer.from(data))
    return true
  }
}

// ws's frame parser: exported by the package, absent from its type definitions.
interface FrameReceiver {
  on(event: 'message', listener: (data: Buffer) => void): void
  on(event: 'error', listener: (err: Error) => void): void
  write(chunk: Buffer, callback: () => void): void
}
const { Receiver } = createRequire(import.meta.url)('ws') as {
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => FrameReceiver
}

/** The text frames in `bytes`, decoded by ws's own (client-side) receiver. */
function decode(bytes: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const texts: string[] = []
    const receiver = new Receiver({ isServer: false, maxPayload: 0 })
    receiver.on('message', (data: Buffer) => texts.push(data.toString()))
    receiver.on('error', reject)
    receiver.write(bytes, () => resolve(texts))
  })
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('one write per turn, frames intact whatever their length', async (t) => {
  const socket = new FakeSocket()
  const stream = new Capture()
  const connection = new BatchedConnection(socket, stream, new BatchedWrites())
  const frames = ['a', 'é✓😀'.repeat(20), 'x'.repeat(125), 'y'.repeat(126), 'z'.repeat(65535), 'w'.repeat(70000)]
  for (const f of frames) connection.send(f)
  t.equal(stream.writes.length, 0, 'nothing written during the turn')
  t.ok(connection.bufferedAmount > 135000, 'pending frames count as buffered')
  await nextTurn()
  t.equal(stream.writes.length, 1)
  t.same(await decode(stream.writes[0]!), frames)
  t.equal(connection.bufferedAmount, 0)
  connection.send('next turn')
  await nextTurn()
  t.same(await decode(stream.writes[1]!), ['next turn'])
  t.same(socket.log, [], 'ws itself was not asked to send')
})

t.test('a close writes the pending frames before the close frame', async (t) => {
  const socket = new FakeSocket()
  const stream = new Capture()
  const connection = new BatchedConnection(socket, stream, new BatchedWrites())
  connection.send('replaced')
  socket.close = (code) => {
    socket.beforeClose?.() // as FlushingWebSocket does
    socket.log.push(`close ${code} after ${stream.writes.length} write(s)`)
    socket.readyState = 2
  }
  connection.close(4000, 'replaced')
  t.same(socket.log, ['close 4000 after 1 write(s)'])
  await nextTurn()
  t.equal(stream.writes.length, 1, 'nothing more at the end of the turn')
})

t.test('ws sends itself when it must transform frames; a socket no longer open refuses', async (t) => {
  const socket = new FakeSocket()
  const stream = new Capture()
  const connection = new BatchedConnection(socket, stream, new BatchedWrites())
  socket.extensions = 'permessage-deflate'
  t.equal(connection.send('deflated by ws'), true)
  socket.extensions = ''
  socket.readyState = 2
  t.equal(connection.send('closing'), false, 'refused: the hub must not count it as delivered')
  await nextTurn()
  t.same(socket.log, ['send deflated by ws'])
  t.equal(stream.writes.length, 0)
})
