// The typed client for protocol v1 (docs: README.md, "The typed client"). It keeps one bound connection
// alive: reconnects with backoff, re-binds with `since` = the last mid it saw, re-opens
// the joined conversation, resends every unanswered request with its original `ref`
// (the server dedupes sends by (uid, ref)), and drops messages it has already emitted.
// With `features`, it also asks for receipts, typing, presence and carbons, re-watches the
// watched peers after every re-bind, and throttles typing notices.
import { Close, Code } from '../protocol/codes.js'
import type { BindFrame, ExitFrame, JoinFrame, SendFrame, ServerFrame, TypingFrame, UnwatchFrame, WatchFrame } from '../protocol/schemas.js'
import type { BoundInfo, ConnectionState, DuetClientEvents, DuetClientOptions } from './types.js'
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js'
import { CLIENT_CLOSED, DuetError } from './duet-error.js'
import { Emitter } from './emitter.js'
import { acceptedFeatures, FEATURES, parsePresence, parseReceipt, type Feature } from './features.js'
import { OPEN, type WebSocketConstructor, type WebSocketLike } from './socket.js'
import { TypingTracker } from './typing.js'

type RequestFrame = SendFrame | JoinFrame | ExitFrame
/** Frames that get no reply on success: nothing waits for them, and nothing resends them. */
type NoticeFrame = TypingFrame | WatchFrame | UnwatchFrame

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
const TYPING_INTERVAL_MS = 3000
const TYPING_TIMEOUT_MS = 5000

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
  private readonly requested: Feature[]
  private accepted: ReadonlySet<Feature> = new Set()
  private readonly watched = new Set<string>()
  /** Per peer, the highest delivered and read mids reported, so only increases are emitted. */
  private readonly receipts = new Map<string, { delivered: string; read: string }>()
  private readonly typing: TypingTracker

  constructor(private readonly options: DuetClientOptions) {
    super()
    this.uid = options.uid
    this.url = options.url
    this.position = options.since
    const impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (impl === undefined) throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. the ws package)')
    this.WebSocketImpl = impl
    this.backoff = options.reconnect === false ? false : { ...DEFAULT_BACKOFF, ...options.reconnect }
    this.requested = FEATURES.filter((name) => options.features?.includes(name))
    this.typing = new TypingTracker(options.typingIntervalMs ?? TYPING_INTERVAL_MS, options.typingTimeoutMs ?? TYPING_TIMEOUT_MS, (peer, typing) =>
      this.emit('typing', { peer, typing }),
    )
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

  /** The features the server accepted at the last bind (empty before it, and from a server without them). */
  get features(): ReadonlySet<Feature> {
    return this.accepted
  }

  /** The peers whose presence is watched (re-watched after every reconnect). */
  get watching(): ReadonlySet<string> {
    return this.watched
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
    this.typing.messageSent(to)
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

  /**
   * Tells `peer` you are typing (feature `typing`). Call it on every keystroke: at most one
   * notice per peer goes out per `typingIntervalMs`, and none while not bound or when the
   * server did not accept the feature. True when a notice went out.
   */
  sendTyping(peer: string): boolean {
    if (this.currentState !== 'bound' || !this.accepted.has('typing') || !this.typing.mayNotify(peer)) return false
    this.transmit({ type: 'typing', touid: peer })
    return true
  }

  /**
   * Follows `peer`'s presence (feature `presence`): a `presence` event now and on every change.
   * The watch list outlives reconnects: it is sent again after every bind.
   */
  watch(peer: string): void {
    if (this.watched.has(peer)) return
    this.watched.add(peer)
    if (this.currentState === 'bound' && this.accepted.has('presence')) this.transmit({ type: 'watch', touid: peer })
  }

  /** Stops following `peer`'s presence. */
  unwatch(peer: string): void {
    if (!this.watched.delete(peer)) return
    if (this.currentState === 'bound' && this.accepted.has('presence')) this.transmit({ type: 'unwatch', touid: peer })
  }

  /**
   * While reconnecting, tries now instead of when the backoff says, and starts the backoff
   * over: for when the network is back (the browser's `online` event) or the user asks.
   * False when there is nothing to retry (bound, closed, or an attempt under way).
   */
  reconnectNow(): boolean {
    if (this.stopped || this.timer === undefined) return false
    clearTimeout(this.timer)
    this.timer = undefined
    this.attempt = 0
    this.openSocket()
    return true
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
    const frame: BindFrame & { features?: Feature[] } = { type: 'bind', uid: this.uid, ref: this.bindRef }
    if (jwt !== undefined) frame.token = jwt
    if (this.position !== undefined) frame.since = this.position
    // Last, and only when asked: without features the frame is byte for byte protocol v1's.
    if (this.requested.length > 0) frame.features = this.requested
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
    if (!frame.error) return this.notice(frame)
    // Typing is best effort: a refused or rate-limited notice is not worth an error.
    if (frame.type === 'typing') return
    const error = DuetError.fromFrame(frame)
    if (FATAL_CODES.has(frame.code)) this.stop(error)
    else this.emit('error', error)
  }

  /** The frames of the opt-in features; any other unasked frame is ignored. */
  private notice(frame: ServerFrame): void {
    switch (frame.code) {
      case Code.RECEIPT: {
        const receipt = parseReceipt(frame)
        if (receipt !== undefined && this.advanceReceipt(receipt.peer, receipt.status, receipt.mid)) this.emit('receipt', receipt)
        return
      }
      case Code.TYPING:
        if (typeof frame.uid === 'string' && frame.uid !== '' && frame.uid !== this.uid) this.typing.noticed(frame.uid)
        return
      case Code.PRESENCE: {
        const presence = parsePresence(frame)
        // An answer that crossed an unwatch is stale.
        if (presence !== undefined && this.watched.has(presence.peer)) this.emit('presence', presence)
        return
      }
    }
  }

  /** Records a receipt's mark; true when it moved (read moves delivered along). */
  private advanceReceipt(peer: string, status: 'delivered' | 'read', mid: string): boolean {
    let marks = this.receipts.get(peer)
    if (marks === undefined) this.receipts.set(peer, (marks = { delivered: '0', read: '0' }))
    if (!midAfter(mid, marks[status])) return false
    marks[status] = mid
    if (status === 'read' && midAfter(mid, marks.delivered)) marks.delivered = mid
    return true
  }

  private deliver(frame: ServerFrame): void {
    const mid = frame.mid
    if (mid === undefined) return
    // A carbon (our own message to a peer, from another connection) is not addressed to us:
    // it is no position in our stream, so it never moves `since`.
    const own = frame.uid === this.uid
    const carbon = own && frame.touid !== this.uid
    if (!carbon && (this.position === undefined || midAfter(mid, this.position))) this.position = mid
    if (!own) this.typing.stopped(frame.uid)
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
      own,
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
    this.accepted = new Set(acceptedFeatures(frame).filter((name) => this.requested.includes(name)))
    const info: BoundInfo = { uid: frame.uid, mid: frame.mid ?? '0', reset: frame.reset === true, features: [...this.accepted] }
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
    if (this.accepted.has('presence')) for (const peer of this.watched) this.transmit({ type: 'watch', touid: peer })
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
    this.typing.clear()
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
    this.typing.clear()
    if (error.code !== CLIENT_CLOSED) this.emit('error', error)
    this.connected?.reject(error)
    this.connected = null
    this.setState('closed')
  }

  private transmit(frame: RequestFrame | NoticeFrame): void {
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
