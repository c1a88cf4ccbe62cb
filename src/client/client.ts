// The typed client for protocol v1 (docs: README.md, "The typed client"). It keeps one bound connection
// alive: reconnects with backoff, re-binds with `since` = the last mid it saw, re-opens
// the joined conversation, resends every unanswered request with its original `ref`
// (the server dedupes sends by (uid, ref)), and drops messages it has already emitted.
import { Close, Code } from '../protocol/codes.js'
import type { BindFrame, ExitFrame, JoinFrame, SendFrame, ServerFrame } from '../protocol/schemas.js'
import type { BoundInfo, ConnectionState, DuetClientEvents, DuetClientOptions } from './types.js'
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js'
import { CLIENT_CLOSED, DuetError } from './duet-error.js'
import { Emitter } from './emitter.js'
import { OPEN, type WebSocketConstructor, type WebSocketLike } from './socket.js'

type RequestFrame = SendFrame | JoinFrame | ExitFrame

interface PendingRequest {
  frame: RequestFrame & { ref: string }
  /** The success code that answers it: 204, 202 or 203. */
  expects: number
  resolve: (frame: ServerFrame) => void
  reject: (error: DuetError) => void
}

/** Codes after which reconnecting would only repeat the failure or fight another tab. */
const FATAL_CODES: ReadonlySet<number> = new Set([Code.AUTH_FAILED, Code.REPLACED])
/** Close codes that mean: do not come back. */
const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([Close.REPLACED, Close.POLICY_VIOLATION])
/** How many mids the duplicate filter remembers. */
const SEEN_LIMIT = 10_000

export class DuetClient extends Emitter<DuetClientEvents> {
  readonly uid: string
  private readonly url: string
  private readonly WebSocketImpl: WebSocketConstructor
  private readonly backoff: BackoffOptions | false
  private socket: WebSocketLike | null = null
  private currentState: ConnectionState = 'closed'
  private stopped = true
  private attempt = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly pending = new Map<string, PendingRequest>()
  private readonly seen = new Set<string>()
  private position: string | undefined
  private openPeer: string | null = null
  private readonly refPrefix = randomPrefix()
  private refCounter = 0
  private bindRef = ''
  private connected: { resolve: (info: BoundInfo) => void; reject: (error: DuetError) => void } | null = null

  constructor(private readonly options: DuetClientOptions) {
    super()
    this.uid = options.uid
    this.url = options.url
    this.position = options.since
    const impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (impl === undefined) throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. the ws package)')
    this.WebSocketImpl = impl
    this.backoff = options.reconnect === false ? false : { ...DEFAULT_BACKOFF, ...options.reconnect }
  }

  get state(): ConnectionState {
    return this.currentState
  }

  /** The highest mid this client has seen: persist it and pass it as `since` to resume exactly. */
  get lastMid(): string | undefined {
    return this.position
  }

  /** The peer whose conversation is open (re-joined after every reconnect). */
  get joined(): string | null {
    return this.openPeer
  }

  /** Connects and binds. Resolves on the first 201; keeps retrying until then unless the failure is final. */
  connect(): Promise<BoundInfo> {
    if (!this.stopped) return Promise.reject(new DuetError(CLIENT_CLOSED, 'already connecting or connected'))
    this.stopped = false
    const bound = new Promise<BoundInfo>((resolve, reject) => (this.connected = { resolve, reject }))
    this.openSocket()
    return bound
  }

  /** Sends `text` to `to`; resolves with the message's mid once the server stored it. */
  async send(to: string, text: string): Promise<string> {
    const ack = await this.request({ type: 'send', touid: to, msg: text, ref: this.nextRef() }, Code.SENT)
    return ack.mid ?? ''
  }

  /** Opens the conversation with `peer`: its messages count as read. */
  async join(peer: string): Promise<void> {
    this.openPeer = peer
    await this.request({ type: 'join', touid: peer, ref: this.nextRef() }, Code.JOINED)
  }

  /** Leaves the open conversation: later messages count as unread again. */
  async exit(): Promise<void> {
    this.openPeer = null
    await this.request({ type: 'exit', ref: this.nextRef() }, Code.EXITED)
  }

  /** Closes for good: no reconnect; unanswered requests reject with CLIENT_CLOSED. */
  close(): void {
    this.stop(new DuetError(CLIENT_CLOSED, 'client closed'))
  }

  private request(frame: RequestFrame & { ref: string }, expects: number): Promise<ServerFrame> {
    if (this.stopped) return Promise.reject(new DuetError(CLIENT_CLOSED, 'client is not connected: call connect()', frame.type))
    return new Promise((resolve, reject) => {
      this.pending.set(frame.ref, { frame, expects, resolve, reject })
      // Not bound yet: it goes out, in order, right after the next 201.
      if (this.currentState === 'bound') this.transmit(frame)
    })
  }

  private openSocket(): void {
    this.setState(this.position === undefined && this.attempt === 0 ? 'connecting' : 'reconnecting')
    const socket = new this.WebSocketImpl(this.url)
    this.socket = socket
    socket.onopen = () => void this.bind(socket)
    socket.onmessage = (event) => {
      if (socket === this.socket && typeof event.data === 'string') this.receive(event.data)
    }
    socket.onclose = (event) => {
      if (socket === this.socket) this.lost(event.code, event.reason)
    }
    // The close event follows every error; the reconnect is decided there.
    socket.onerror = () => undefined
  }

  private async bind(socket: WebSocketLike): Promise<void> {
    const { token } = this.options
    let jwt: string | undefined
    try {
      jwt = typeof token === 'function' ? await token() : token
    } catch (err) {
      this.stop(new DuetError(Code.AUTH_FAILED, `token provider failed: ${err instanceof Error ? err.message : String(err)}`, 'bind'))
      return
    }
    if (socket !== this.socket || socket.readyState !== OPEN) return
    this.bindRef = this.nextRef()
    const frame: BindFrame = { type: 'bind', uid: this.uid, ref: this.bindRef }
    if (jwt !== undefined) frame.token = jwt
    if (this.position !== undefined) frame.since = this.position
    socket.send(JSON.stringify(frame))
  }

  private receive(data: string): void {
    let frame: ServerFrame
    try {
      frame = JSON.parse(data) as ServerFrame
    } catch {
      return
    }
    if (typeof frame !== 'object' || frame === null || typeof frame.code !== 'number') return
    this.emit('frame', frame)
    if (frame.code === Code.MESSAGE) return this.deliver(frame)
    if (frame.ref !== undefined && frame.ref === this.bindRef) return this.bindAnswered(frame)
    const request = frame.ref === undefined ? undefined : this.pending.get(frame.ref)
    if (request !== undefined) return this.answered(request, frame)
    if (frame.error) {
      const error = DuetError.fromFrame(frame)
      if (FATAL_CODES.has(frame.code)) this.stop(error)
      else this.emit('error', error)
    }
  }

  private deliver(frame: ServerFrame): void {
    const mid = frame.mid
    if (mid === undefined) return
    if (this.position === undefined || midAfter(mid, this.position)) this.position = mid
    if (this.seen.has(mid)) return
    this.seen.add(mid)
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value!)
    this.emit('message', {
      mid,
      from: frame.uid,
      to: frame.touid,
      text: frame.msg,
      ts: frame.ts ?? Date.now(),
      offline: frame.offline === true,
    })
  }

  private bindAnswered(frame: ServerFrame): void {
    if (frame.error) {
      const error = DuetError.fromFrame(frame)
      if (FATAL_CODES.has(frame.code)) this.stop(error)
      else {
        // 500, 503, 429: the bind was not done; try again after a delay.
        this.emit('error', error)
        this.socket?.close()
      }
      return
    }
    const info: BoundInfo = { uid: frame.uid, mid: frame.mid ?? '0', reset: frame.reset === true }
    if (info.reset) this.seen.clear()
    // Only adopt the server's head when we have no position, or ours is unknown to it:
    // otherwise a drop during the replay that follows would skip the rest of it.
    if (info.reset || this.position === undefined) this.position = info.mid
    this.attempt = 0
    this.setState('bound')
    if (this.openPeer !== null && ![...this.pending.values()].some((p) => p.frame.type !== 'send')) {
      this.transmit({ type: 'join', touid: this.openPeer, ref: this.nextRef() })
    }
    for (const request of this.pending.values()) this.transmit(request.frame)
    this.emit('bound', info)
    this.connected?.resolve(info)
    this.connected = null
  }

  private answered(request: PendingRequest, frame: ServerFrame): void {
    // 503: the server is going away and did not process it; it goes again after the reconnect.
    if (frame.code === Code.SHUTTING_DOWN) return
    this.pending.delete(request.frame.ref)
    if (frame.code === request.expects) {
      if (frame.code === Code.JOINED) this.emit('joined', frame.touid)
      if (frame.code === Code.EXITED) this.emit('exited', frame.touid)
      request.resolve(frame)
    } else {
      request.reject(DuetError.fromFrame(frame))
    }
  }

  private lost(code: number, reason: string): void {
    this.socket = null
    if (this.stopped) return
    if (FINAL_CLOSE_CODES.has(code)) {
      this.stop(new DuetError(CLIENT_CLOSED, `connection closed for good (${code} ${reason})`))
      return
    }
    if (this.backoff === false) {
      this.stop(new DuetError(CLIENT_CLOSED, `connection lost (${code}) and reconnect is off`))
      return
    }
    this.setState('reconnecting')
    const delay = backoffDelay(this.attempt++, this.backoff)
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (!this.stopped) this.openSocket()
    }, delay)
  }

  private stop(error: DuetError): void {
    if (this.stopped) return
    this.stopped = true
    clearTimeout(this.timer)
    const socket = this.socket
    this.socket = null
    socket?.close(1000, 'client closed')
    for (const request of this.pending.values()) request.reject(error)
    this.pending.clear()
    this.attempt = 0
    if (error.code !== CLIENT_CLOSED) this.emit('error', error)
    this.connected?.reject(error)
    this.connected = null
    this.setState('closed')
  }

  private transmit(frame: RequestFrame): void {
    if (this.socket?.readyState === OPEN) this.socket.send(JSON.stringify(frame))
  }

  private setState(state: ConnectionState): void {
    if (state === this.currentState) return
    this.currentState = state
    this.emit('state', state)
  }

  private nextRef(): string {
    return `${this.refPrefix}${(++this.refCounter).toString(36)}`
  }
}

/** True when mid `a` is after mid `b` (both strings of digits, possibly beyond 2^53). */
export function midAfter(a: string, b: string): boolean {
  return a.length !== b.length ? a.length > b.length : a > b
}

/** A per-client ref prefix, unique across tabs and restarts of the same uid. */
function randomPrefix(): string {
  const bytes = new Uint8Array(8)
  // getRandomValues, unlike randomUUID, also exists on plain-http pages.
  globalThis.crypto.getRandomValues(bytes)
  return `${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}-`
}
