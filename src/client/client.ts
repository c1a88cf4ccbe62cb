// The typed client for protocol v1 (docs: README.md, "The typed client"). It keeps one bound connection
// alive: reconnects with backoff, re-binds with `since` = the last mid it saw, re-opens
// the joined conversation, resends every unanswered request with its original `ref`
// (the server dedupes sends by (uid, ref)), and drops messages it has already emitted.
// With `features`, it also asks for receipts, typing, presence and carbons, re-watches the
// watched peers after every re-bind, and throttles typing notices. Its frames are paced below
// the server's rate limit (outbox.ts), and a bind or request that meets a silent server for
// `answerTimeoutMs` ends the connection (watchdog.ts): a half-open link otherwise looks open
// until TCP gives up.
import { Close, Code } from '../protocol/codes.js'
import type { BindFrame, ServerFrame } from '../protocol/schemas.js'
import type { BoundInfo, ConnectionState, DuetClientEvents, DuetClientOptions } from './types.js'
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js'
import { CLIENT_CLOSED, DuetError } from './duet-error.js'
import { Emitter } from './emitter.js'
import { FEATURES, type Feature } from './features.js'
import { midAfter, randomPrefix } from './mids.js'
import { PendingRequests, type RequestFrame } from './requests.js'
import { Signals, type SignalFrame } from './signals.js'
import { OPEN, type WebSocketConstructor, type WebSocketLike } from './socket.js'
import { DEFAULT_PACING, Outbox } from './outbox.js'
import { AnswerWatchdog } from './watchdog.js'

/** Codes after which reconnecting would only repeat the failure or fight another tab. */
const FATAL_CODES: ReadonlySet<number> = new Set([Code.AUTH_FAILED, Code.REPLACED])
/** A refused bind is final, as the same bind would be refused again, unless it is one of these. */
const BIND_RETRY_CODES: ReadonlySet<number> = new Set([Code.RATE_LIMITED, Code.INTERNAL, Code.SHUTTING_DOWN])
/** Close codes that mean: do not come back (replaced, abuse, the user erased). */
const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([Close.REPLACED, Close.POLICY_VIOLATION, Close.ERASED])
/** How many mids the duplicate filter remembers. */
const SEEN_LIMIT = 10_000
const TYPING_INTERVAL_MS = 3000
const TYPING_TIMEOUT_MS = 5000
const ANSWER_TIMEOUT_MS = 20_000
/** The close code the client gives a connection it presumes dead (4000–4999: the application's). */
const NO_ANSWER_CLOSE = 4000

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
  private readonly pending = new PendingRequests()
  private readonly seen = new Set<string>()
  private position: string | undefined
  private openPeer: string | null = null
  private readonly refPrefix = randomPrefix()
  private refCounter = 0
  private bindRef = ''
  private connected: { resolve: (info: BoundInfo) => void; reject: (error: DuetError) => void } | null = null
  /** The features asked for at every bind. */
  private readonly requested: Feature[]
  private readonly signals: Signals
  private readonly outbox: Outbox
  private readonly watchdog: AnswerWatchdog
  /** The bind frame went out on this socket and has no answer yet. */
  private binding = false

  constructor(private readonly options: DuetClientOptions) {
    super()
    this.uid = options.uid
    this.url = options.url
    this.position = options.since
    const impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (impl === undefined) throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. the ws package)')
    this.WebSocketImpl = impl
    this.backoff = options.reconnect === false ? false : { ...DEFAULT_BACKOFF, ...options.reconnect }
    const host = {
      uid: this.uid,
      bound: () => this.currentState === 'bound',
      transmit: (frame: SignalFrame) => this.transmit(frame),
      offer: (frame: SignalFrame) => this.outbox.offer(JSON.stringify(frame)),
      emit: this.emit.bind(this),
    }
    this.requested = FEATURES.filter((name) => options.features?.includes(name))
    this.signals = new Signals(host, this.requested, options.typingIntervalMs ?? TYPING_INTERVAL_MS, options.typingTimeoutMs ?? TYPING_TIMEOUT_MS)
    this.outbox = new Outbox(options.pacing === false ? false : { ...DEFAULT_PACING, ...options.pacing })
    const awaiting = (): boolean => this.binding || (this.currentState === 'bound' && this.pending.size > 0)
    this.watchdog = new AnswerWatchdog(options.answerTimeoutMs ?? ANSWER_TIMEOUT_MS, awaiting, (silentMs) => {
      // Presumed dead: give it up without waiting for its close, and reconnect; the requests
      // go again with their refs after the re-bind.
      const socket = this.socket
      this.lost(NO_ANSWER_CLOSE, `no answer for ${Math.round(silentMs)} ms`)
      socket?.close(NO_ANSWER_CLOSE, 'no answer')
    })
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
    return this.signals.features
  }

  /** The peers whose presence is watched (re-watched after every reconnect). */
  get watching(): ReadonlySet<string> {
    return this.signals.watched
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
    this.signals.typing.messageSent(to)
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
    return this.signals.sendTyping(peer)
  }

  /**
   * Follows `peer`'s presence (feature `presence`): a `presence` event now and on every change.
   * The watch list outlives reconnects: it is sent again after every bind.
   */
  watch(peer: string): void {
    this.signals.watch(peer)
  }

  /** Stops following `peer`'s presence. */
  unwatch(peer: string): void {
    this.signals.unwatch(peer)
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

  private request(frame: RequestFrame, expects: number): Promise<ServerFrame> {
    if (this.stopped) return Promise.reject(new DuetError(CLIENT_CLOSED, 'client is not connected: call connect()', frame.type))
    const answered = this.pending.add(frame, expects)
    // Not bound yet: it goes out, in order, right after the next 201.
    if (this.currentState === 'bound') {
      this.transmit(frame)
      if (this.pending.size === 1) this.watchdog.begin()
      else this.watchdog.arm()
    }
    return answered
  }

  private openSocket(): void {
    this.setState(this.position === undefined && this.attempt === 0 ? 'connecting' : 'reconnecting')
    const socket = new this.WebSocketImpl(this.url)
    this.socket = socket
    socket.onopen = () => {
      if (socket !== this.socket) return
      this.outbox.open((data) => {
        if (socket.readyState === OPEN) socket.send(data)
      })
      void this.bind(socket)
    }
    socket.onmessage = (event) => {
      if (socket !== this.socket) return
      this.watchdog.heard()
      if (typeof event.data === 'string') this.receive(event.data)
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
    this.outbox.push(JSON.stringify(frame))
    this.binding = true
    this.watchdog.begin()
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
    if (frame.code === Code.RATE_LIMITED) this.outbox.slowDown()
    if (frame.code === Code.MESSAGE) return this.deliver(frame)
    if (frame.ref !== undefined && frame.ref === this.bindRef) return this.bindAnswered(frame)
    if (this.pending.has(frame.ref)) return this.answered(frame)
    if (!frame.error) return this.signals.notice(frame)
    // Typing is best effort: a refused or rate-limited notice is not worth an error.
    if (frame.type === 'typing') return
    const error = DuetError.fromFrame(frame)
    if (FATAL_CODES.has(frame.code)) this.stop(error)
    else this.emit('error', error)
  }

  private deliver(frame: ServerFrame): void {
    const mid = frame.mid
    if (mid === undefined) return
    // A carbon (our own message to a peer, from another connection) is not addressed to us:
    // it is no position in our stream, so it never moves `since`.
    const own = frame.uid === this.uid
    const carbon = own && frame.touid !== this.uid
    if (!carbon && (this.position === undefined || midAfter(mid, this.position))) this.position = mid
    if (!own) this.signals.typing.stopped(frame.uid)
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
    this.binding = false
    if (frame.error) {
      const error = DuetError.fromFrame(frame)
      if (!BIND_RETRY_CODES.has(frame.code)) this.stop(error)
      else {
        // 500, 503, 429: the bind was not done; try again after a delay.
        this.emit('error', error)
        this.socket?.close()
      }
      return
    }
    const info: BoundInfo = { uid: frame.uid, mid: frame.mid ?? '0', reset: frame.reset === true, features: this.signals.bound(frame) }
    if (typeof frame.maxMessageLength === 'number' && frame.maxMessageLength > 0) info.maxMessageLength = frame.maxMessageLength
    if (info.reset) {
      // The store is not the one our state came from: its mids start over.
      this.seen.clear()
      this.signals.reset()
    }
    // Only adopt the server's head when we have no position, or ours is unknown to it:
    // otherwise a drop during the replay that follows would skip the rest of it.
    if (info.reset || this.position === undefined) this.position = info.mid
    this.attempt = 0
    // The waiting frames go out before anyone hears of the bind: a send made in a `state`
    // listener must come after them, once.
    if (this.openPeer !== null && this.pending.onlySends()) {
      this.transmit({ type: 'join', touid: this.openPeer, ref: this.nextRef() })
    }
    for (const frame of this.pending.frames()) this.transmit(frame)
    this.setState('bound')
    this.signals.rewatch()
    this.watchdog.begin()
    this.emit('bound', info)
    this.connected?.resolve(info)
    this.connected = null
  }

  private answered(frame: ServerFrame): void {
    if (this.pending.settle(frame) !== true) return
    if (frame.code === Code.JOINED) this.emit('joined', frame.touid)
    if (frame.code === Code.EXITED) this.emit('exited', frame.touid)
  }

  private lost(code: number, reason: string): void {
    this.socket = null
    this.outbox.close()
    this.binding = false
    this.watchdog.stop()
    this.signals.typing.clear()
    if (this.stopped) return
    if (FINAL_CLOSE_CODES.has(code)) {
      // The close code is the error's code: pending requests reject with it and `error` fires.
      this.stop(new DuetError(code, `connection closed for good (${code} ${reason})`))
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
    this.outbox.close()
    this.binding = false
    this.watchdog.stop()
    this.pending.rejectAll(error)
    this.attempt = 0
    this.signals.typing.clear()
    if (error.code !== CLIENT_CLOSED) this.emit('error', error)
    this.connected?.reject(error)
    this.connected = null
    this.setState('closed')
  }

  private transmit(frame: RequestFrame | SignalFrame): void {
    this.outbox.push(JSON.stringify(frame))
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
