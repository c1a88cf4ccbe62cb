// A WebSocket client at the byte level, for what a real client library will not do: hold the
// TCP connection open after sending a close frame, or look at a refused upgrade's headers.
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import type { Socket } from 'node:net'
import type { Frame } from './ws-client.js'

export interface UpgradeResult {
  status: number
  headers: http.IncomingHttpHeaders
  /** The response body of a refused upgrade. */
  body?: string
  /** The upgraded socket on 101 (it holds a connection slot until destroyed). */
  socket?: Socket
}

/** A raw WebSocket upgrade request: the status, headers and body the server answers with. */
export function rawUpgrade(wsUrl: string, extraHeaders: Record<string, string> = {}): Promise<UpgradeResult> {
  const url = new URL(wsUrl)
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        ...extraHeaders,
      },
    })
    request.once('upgrade', (response, socket) => resolve({ status: response.statusCode ?? 0, headers: response.headers, socket }))
    request.once('response', (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => (body += chunk))
      response.once('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
    })
    request.once('error', reject)
    request.end()
  })
}

const TEXT = 0x1
const CLOSE = 0x8

/** Client frames are masked (RFC 6455 §5.3). Payloads here stay under 126 bytes. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  if (payload.length >= 126) throw new Error('raw frames here are short')
  const mask = randomBytes(4)
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!))
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked])
}

/** An upgraded connection that reads the server's (short, unmasked) frames itself. */
export class RawClient {
  private buffered = Buffer.alloc(0)
  private readonly frames: Array<{ opcode: number; payload: Buffer }> = []
  private wake: (() => void) | null = null

  private ended: Error | null = null

  private constructor(readonly socket: Socket) {
    // The server's FIN after its close frame must not make Node end our side too: this client
    // keeps the connection half open, as a slow or unlucky peer would.
    socket.allowHalfOpen = true
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk])
      this.parse()
      this.wake?.()
    })
    const end = (err?: Error): void => {
      this.ended ??= err ?? new Error('the server ended the connection')
      this.wake?.()
    }
    socket.on('end', () => end())
    socket.on('error', end)
  }

  static async connect(wsUrl: string): Promise<RawClient> {
    const { status, socket } = await rawUpgrade(wsUrl)
    if (status !== 101 || socket === undefined) throw new Error(`upgrade answered ${status}`)
    return new RawClient(socket)
  }

  /** A masked text frame carrying `frame` as JSON, to write alone or with others. */
  static text(frame: unknown): Buffer {
    return clientFrame(TEXT, Buffer.from(JSON.stringify(frame)))
  }

  /** A masked close frame. */
  static close(code = 1000): Buffer {
    const payload = Buffer.alloc(2)
    payload.writeUInt16BE(code)
    return clientFrame(CLOSE, payload)
  }

  /** Writes the frames in one chunk, so the server reads them in one go. */
  write(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames))
  }

  async nextJson(): Promise<Frame> {
    const { opcode, payload } = await this.nextFrame()
    if (opcode !== TEXT) throw new Error(`expected a text frame, got opcode ${opcode}`)
    return JSON.parse(payload.toString()) as Frame
  }

  /** Resolves once the server's close frame has come: the server is closing the connection. */
  async closeFrame(): Promise<void> {
    const { opcode } = await this.nextFrame()
    if (opcode !== CLOSE) throw new Error(`expected a close frame, got opcode ${opcode}`)
  }

  private async nextFrame(): Promise<{ opcode: number; payload: Buffer }> {
    while (this.frames.length === 0) {
      if (this.ended !== null) throw this.ended
      await new Promise<void>((resolve) => (this.wake = resolve))
    }
    return this.frames.shift()!
  }

  private parse(): void {
    for (;;) {
      if (this.buffered.length < 2) return
      const opcode = this.buffered[0]! & 0x0f
      let length = this.buffered[1]! & 0x7f
      let start = 2
      if (length === 126) {
        if (this.buffered.length < 4) return
        length = this.buffered.readUInt16BE(2)
        start = 4
      } else if (length === 127) throw new Error('frames this long are not expected here')
      if (this.buffered.length < start + length) return
      this.frames.push({ opcode, payload: this.buffered.subarray(start, start + length) })
      this.buffered = this.buffered.subarray(start + length)
    }
  }
}
