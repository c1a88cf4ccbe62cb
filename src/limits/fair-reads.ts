// Read fairness between connections. Each connection may deliver `budget` frames per turn
// of the event loop; frames past that wait in its own backlog for the next turn, and its
// socket is paused meanwhile (so the backlog holds at most what was already read). One
// flooding client thus cannot make every other client wait behind the thousands of frames
// the kernel hands over in one read burst. In the common case the cost is a counter per
// frame and one shared setImmediate per turn with traffic: nothing per frame is allocated.

export interface Pausable {
  pause(): void
  resume(): void
}

/** One connection's share: create one per connection. */
export class ReadTurn<T> {
  epoch = -1
  frames = 0
  /** Frames read past the budget, oldest first; null when none wait. */
  backlog: T[] | null = null
  /** Index of the oldest frame in `backlog` not yet delivered. */
  backlogHead = 0

  constructor(
    readonly socket: Pausable,
    readonly deliver: (frame: T) => void,
  ) {}
}

export class FairReads<T> {
  private epoch = 0
  private scheduled = false
  private waiting: Array<ReadTurn<T>> = []
  private readonly nextTurn = (): void => {
    this.scheduled = false
    this.epoch++
    const waiting = this.waiting
    this.waiting = []
    for (const turn of waiting) this.drain(turn)
  }

  constructor(private readonly budget: number) {}

  /** One frame read from the connection: delivered now, or queued for a later turn. */
  receive(turn: ReadTurn<T>, frame: T): void {
    if (turn.backlog !== null) {
      turn.backlog.push(frame)
      return
    }
    if (turn.epoch !== this.epoch) {
      turn.epoch = this.epoch
      turn.frames = 0
    }
    this.schedule()
    if (++turn.frames > this.budget) {
      turn.backlog = [frame]
      turn.backlogHead = 0
      turn.socket.pause()
      this.waiting.push(turn)
      return
    }
    turn.deliver(frame)
  }

  /** The connection is closing: deliver what it sent before, now, in order. */
  flush(turn: ReadTurn<T>): void {
    const backlog = turn.backlog
    if (backlog === null) return
    turn.backlog = null
    for (let i = turn.backlogHead; i < backlog.length; i++) turn.deliver(backlog[i]!)
    // Left in `waiting` it is skipped: drain() ignores turns without a backlog.
  }

  private drain(turn: ReadTurn<T>): void {
    const backlog = turn.backlog
    if (backlog === null) return
    const end = Math.min(turn.backlogHead + this.budget, backlog.length)
    turn.epoch = this.epoch
    turn.frames = end - turn.backlogHead
    for (let i = turn.backlogHead; i < end; i++) turn.deliver(backlog[i]!)
    turn.backlogHead = end
    if (end === backlog.length) {
      turn.backlog = null
      turn.socket.resume()
    } else {
      this.waiting.push(turn)
      this.schedule()
    }
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(this.nextTurn)
  }
}
