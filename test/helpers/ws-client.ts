// A WebSocket test client that queues every frame it receives, so a test awaits the
// next frame (or the close) instead of sleeping.
import WebSocket from 'ws'

export interface Frame {
  type: string
  error: boolean
  code: number
  msg: string
  uid: string
  touid: string
  ref?: string
  mid?: string
  ts?: number
  offline?: boolean
  reset?: boolean
  [key: string]: unknown
}

interface Waiter {
  match: (frame: Frame) => boolean
  resolve: (frame: Frame) => void
  reject: (err: Error) => void
}

export class TestClient {
  readonly frames: Frame[] = []
  private readonly waiters: Waiter[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  private isClosed = false

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => this.receive(JSON.parse(data.toString()) as Frame))
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.isClosed = true
        for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`closed ${code} before the frame came`))
        resolve({ code, reason: reason.toString() })
      })
    })
  }

  static async connect(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    const socket = new WebSocket(url, options)
    const client = new TestClient(socket)
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('error', reject)
    })
    return client
  }

  /** Connects and binds; resolves with the 201 frame. */
  static async bound(url: string, uid: string, extra: Record<string, unknown> = {}): Promise<TestClient> {
    const client = await TestClient.connect(url)
    client.send({ type: 'bind', uid, ...extra })
    const reply = await client.next()
    if (reply.code !== 201) throw new Error(`bind ${uid} failed: ${JSON.stringify(reply)}`)
    return client
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.socket.send(data, { binary })
  }

  private receive(frame: Frame): void {
    const index = this.waiters.findIndex((w) => w.match(frame))
    if (index >= 0) {
      this.waiters.splice(index, 1)[0]!.resolve(frame)
      return
    }
    this.frames.push(frame)
  }

  /** The first frame (queued or future) that matches; it is taken off the queue. */
  next(match: (frame: Frame) => boolean = () => true): Promise<Frame> {
    const index = this.frames.findIndex(match)
    if (index >= 0) return Promise.resolve(this.frames.splice(index, 1)[0]!)
    if (this.isClosed) return Promise.reject(new Error('connection closed'))
    return new Promise((resolve, reject) => this.waiters.push({ match, resolve, reject }))
  }

  nextCode(code: number): Promise<Frame> {
    return this.next((f) => f.code === code)
  }

  /** Sends a frame with a fresh ref and resolves with the reply that echoes it. */
  private refCounter = 0
  request(frame: Record<string, unknown>): Promise<Frame> {
    const ref = `q${++this.refCounter}`
    const reply = this.next((f) => f.ref === ref)
    this.send({ ...frame, ref })
    return reply
  }

  close(): Promise<{ code: number; reason: string }> {
    if (!this.isClosed) this.socket.close()
    return this.closed
  }
}
