// A scripted stand-in for a WebSocket, for client behaviour that a real server only shows
// under rare timing (a message replayed twice, a socket lost before the ack).
import { DuetClient, type DuetClientOptions, type WebSocketLike } from '../../src/client/index.js'

export class FakeSocket implements WebSocketLike {
  static readonly instances: FakeSocket[] = []
  /** Called with every new socket, so a test can await the next connection. */
  static onCreate: ((socket: FakeSocket) => void) | null = null

  readyState = 0
  readonly sent: Array<Record<string, unknown>> = []
  /** The frames exactly as sent, for byte-level checks. */
  readonly raw: string[] = []
  onopen: ((event: unknown) => void) | null = null
  onmessage: ((event: { data: unknown }) => void) | null = null
  onclose: ((event: { code: number; reason: string }) => void) | null = null
  onerror: ((event: unknown) => void) | null = null
  private sentWaiter: (() => void) | null = null

  constructor(readonly url: string) {
    FakeSocket.instances.push(this)
    FakeSocket.onCreate?.(this)
  }

  static next(): Promise<FakeSocket> {
    return new Promise((resolve) => (FakeSocket.onCreate = resolve))
  }

  send(data: string): void {
    this.raw.push(data)
    this.sent.push(JSON.parse(data) as Record<string, unknown>)
    this.sentWaiter?.()
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState === 3) return
    this.readyState = 3
    queueMicrotask(() => this.onclose?.({ code, reason }))
  }

  /** The server accepts the connection. */
  open(): void {
    this.readyState = 1
    this.onopen?.({})
  }

  /** The server sends text as it is, well-formed or not. */
  pushRaw(data: unknown): void {
    this.onmessage?.({ data })
  }

  /** The server sends a frame; the seed fields default to a success shape. */
  push(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify({ type: '', error: false, msg: '', uid: '', touid: '', ...frame }) })
  }

  /** Resolves once the client has sent `count` frames in total. */
  async sentCount(count: number): Promise<Array<Record<string, unknown>>> {
    while (this.sent.length < count) await new Promise<void>((resolve) => (this.sentWaiter = resolve))
    return this.sent
  }

  /** The connection is lost without a close handshake. */
  drop(): void {
    this.close(1006, '')
  }
}

/** A client for 'bob' on a FakeSocket, bound: its bind answered by a 201 with `reply`'s fields too. */
export async function boundOnFake(
  options: Partial<DuetClientOptions> = {},
  reply: Record<string, unknown> = {},
): Promise<{ client: DuetClient; socket: FakeSocket }> {
  const created = FakeSocket.next()
  const client = new DuetClient({ url: 'ws://test/ws', uid: 'bob', WebSocket: FakeSocket, ...options })
  const connected = client.connect()
  const socket = await created
  socket.open()
  const [bind] = await socket.sentCount(1)
  socket.push({ type: 'bind', code: 201, uid: 'bob', mid: '10', ref: bind!.ref, ...reply })
  await connected
  return { client, socket }
}
