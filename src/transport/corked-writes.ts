// Corked writes: one write system call per connection per event-loop turn, however many
// frames the turn sends it. A chat message costs an ack to its sender and a push to its
// recipient, and a busy client has several frames in every read, so writing each frame at
// once costs a syscall per frame: on loopback the largest single cost of a message.
// The first frame a connection is sent in a turn corks its socket; one shared setImmediate
// uncorks every corked socket after the turn's I/O callbacks. Frames sent from a
// setImmediate callback themselves (a store's group commit) go out at the next turn's end,
// microseconds later. Closing is safe: a socket that ends flushes what it holds first.
import type { Connection } from '../hub/session.js'

/** The byte stream under a WebSocket (a net.Socket). */
export interface Corkable {
  cork(): void
  uncork(): void
  readonly destroyed: boolean
}

/** What the WebSocket must offer: `ws`'s WebSocket does. */
export interface FrameSocket {
  send(data: string): void
  close(code: number, reason: string): void
  readonly bufferedAmount: number
}

/** One per server: the sockets corked in the current turn. */
export class CorkedWrites {
  private turn = 0
  private corked: Corkable[] = []
  private readonly uncorkAll = (): void => {
    this.turn++
    const corked = this.corked
    this.corked = []
    for (const stream of corked) if (!stream.destroyed) stream.uncork()
  }

  /** Holds the connection's writes until the end of this turn (once per turn). */
  hold(connection: CorkedConnection): void {
    if (connection.turn === this.turn) return
    connection.turn = this.turn
    if (this.corked.length === 0) setImmediate(this.uncorkAll)
    connection.stream.cork()
    this.corked.push(connection.stream)
  }
}

/** The hub's view of one WebSocket, with its writes corked per turn. */
export class CorkedConnection implements Connection {
  /** The turn of CorkedWrites in which the stream was last corked. */
  turn = -1

  constructor(
    private readonly socket: FrameSocket,
    readonly stream: Corkable,
    private readonly writes: CorkedWrites,
  ) {}

  send(data: string): void {
    this.writes.hold(this)
    this.socket.send(data)
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason)
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount
  }
}
