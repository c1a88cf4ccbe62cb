// Batched writes: one write to a connection's socket per event-loop turn, however many frames
// the turn sends it. A chat message costs an ack to its sender and a push to its recipient,
// and a busy client has several frames in every read: written one by one, each frame is a
// system call (on loopback the largest single cost of a message) and, through ws, a header
// buffer, an options object and two queued chunks.
// Frames wait in the connection's list until the end of the turn (one shared setImmediate),
// then go out framed into one buffer: server frames are unmasked text frames, so the header is
// two to ten bytes. ws still does everything else (reading, pings, closing); when it must
// transform frames itself (permessage-deflate negotiated), frames go through ws.send as usual.
// A frame for a socket that is no longer open is refused, so the hub does not count it as
// delivered (ws would drop it silently). A close first writes what is pending, so a reply sent
// just before it (409, 503) is never overtaken by the close frame; so does the close ws makes
// itself when the peer's close frame comes (FlushingWebSocket), so no frame the hub counted as
// sent is dropped: its peer may ignore it after closing, which `since` recovers. Only an abrupt
// end (terminate, a socket error) drops the frames of its turn, with the connection itself.
import type { Connection } from '../hub/session.js'

/** The byte stream under a WebSocket (a net.Socket). */
export interface ByteStream {
  write(data: Uint8Array): boolean
}

/** What the WebSocket must offer: `ws`'s WebSocket does. */
export interface FrameSocket {
  send(data: string): void
  close(code?: number, reason?: string): void
  readonly bufferedAmount: number
  readonly readyState: number
  /** Negotiated extensions; "" when none. */
  readonly extensions: string
  /** Called before every close, the library's own too (FlushingWebSocket has it). */
  beforeClose: (() => void) | null
}

const OPEN = 1
const TEXT_FINAL = 0x81

/** One per server: the connections with frames waiting in the current turn. */
export class BatchedWrites {
  private waiting: BatchedConnection[] = []
  private readonly flushAll = (): void => {
    const waiting = this.waiting
    this.waiting = []
    for (const connection of waiting) connection.flush()
  }

  /** The connection has its first frame of this turn: write it out at the end of the turn. */
  schedule(connection: BatchedConnection): void {
    if (this.waiting.length === 0) setImmediate(this.flushAll)
    this.waiting.push(connection)
  }
}

/** The hub's view of one WebSocket, its frames written once per turn. */
export class BatchedConnection implements Connection {
  /** Frames of this turn not yet written; null when none wait. */
  private pending: string[] | null = null
  private pendingChars = 0

  constructor(
    private readonly socket: FrameSocket,
    private readonly stream: ByteStream,
    private readonly writes: BatchedWrites,
  ) {
    // The peer's close frame makes ws close at once: this turn's frames go out before its reply.
    socket.beforeClose = () => this.flush()
  }

  send(data: string): boolean {
    // ws would drop it too (the peer has sent its close frame, or the socket is gone).
    if (this.socket.readyState !== OPEN) return false
    if (this.socket.extensions !== '') {
      this.socket.send(data)
      return true
    }
    if (this.pending === null) {
      this.pending = [data]
      this.writes.schedule(this)
    } else this.pending.push(data)
    this.pendingChars += data.length
    return true
  }

  /** Pending frames go out before the close frame (as they do, by beforeClose, when ws closes itself). */
  close(code: number, reason: string): void {
    this.flush()
    this.socket.close(code, reason)
  }

  /** Bytes queued for the peer, this turn's frames included (counted in UTF-16 units). */
  get bufferedAmount(): number {
    return this.socket.bufferedAmount + this.pendingChars
  }

  /** Writes the waiting frames as one buffer; frames for a socket that stopped being open are dropped. */
  flush(): void {
    const frames = this.pending
    if (frames === null) return
    this.pending = null
    this.pendingChars = 0
    if (this.socket.readyState !== OPEN) return
    const lengths = new Array<number>(frames.length)
    let total = 0
    for (let i = 0; i < frames.length; i++) {
      const length = Buffer.byteLength(frames[i]!)
      lengths[i] = length
      total += length + (length < 126 ? 2 : length < 65536 ? 4 : 10)
    }
    const out = Buffer.allocUnsafe(total)
    let at = 0
    for (let i = 0; i < frames.length; i++) {
      const length = lengths[i]!
      out[at++] = TEXT_FINAL
      if (length < 126) out[at++] = length
      else if (length < 65536) {
        out[at++] = 126
        at = out.writeUInt16BE(length, at)
      } else {
        out[at++] = 127
        at = out.writeUInt32BE(0, at)
        at = out.writeUInt32BE(length, at)
      }
      at += out.write(frames[i]!, at)
    }
    this.stream.write(out)
  }
}
