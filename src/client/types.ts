// What an app sees of the typed client: its options, its events and what they carry.
import type { ServerFrame } from '../protocol/schemas.js'
import type { DuetError } from './duet-error.js'
import type { BackoffOptions } from './backoff.js'
import type { PacingOptions } from './outbox.js'
import type { Feature } from './features.js'
import type { WebSocketConstructor } from './socket.js'

export type { Feature } from './features.js'

export interface DuetClientOptions {
  /** ws:// or wss:// URL of the server's /ws endpoint. */
  url: string
  uid: string
  /** JWT for bind when the server has auth on; a function is called before every bind, so it can refresh. */
  token?: string | (() => string | Promise<string>)
  /** Resume after this mid (one the app persisted); without it the first bind gets the undelivered messages. */
  since?: string
  /** Defaults to globalThis.WebSocket; pass `ws` in Node < 22. */
  WebSocket?: WebSocketConstructor
  /** Reconnect timing, or false to never reconnect. */
  reconnect?: Partial<BackoffOptions> | false
  /**
   * Opt-in frames to ask for at bind: `receipts`, `typing`, `presence`, `carbons`. The server
   * answers with those it accepted (`client.features`); without this option the bind frame is
   * exactly the one of protocol v1.
   */
  features?: readonly Feature[]
  /** `sendTyping` sends at most one notice per peer this often (default 3000 ms). */
  typingIntervalMs?: number
  /** A peer counts as typing this long after their last notice (default 5000 ms). */
  typingTimeoutMs?: number
  /**
   * The pace of the client's frames, below the server's rate limit (`RATE_LIMIT`, `RATE_BURST`):
   * default 100 a second, 200 at once; frames past it wait their turn, and a 429 halves the
   * pace (at most once a second) for the rest of the client's life. Set it below a server
   * configured lower; false: none. RangeError unless perSecond > 0 and burst ≥ 1.
   */
  pacing?: Partial<PacingOptions> | false
  /**
   * While a bind or request waits, the server silent this long (and a short grace more) means a
   * dead link: the client drops the connection, reconnects and sends the requests again with
   * their refs (default 20 000 ms; false: never; RangeError unless an integer from 1 to 2³¹−1).
   */
  answerTimeoutMs?: number | false
}

export type ConnectionState = 'connecting' | 'bound' | 'reconnecting' | 'closed'

/** A chat message: addressed to this user (a code 200 frame), or a carbon of one this user sent elsewhere. */
export interface ChatMessage {
  mid: string
  from: string
  to: string
  text: string
  ts: number
  /** True when it was stored while this user was offline and replayed at bind. */
  offline: boolean
  /**
   * True when this user wrote it: a carbon of a message sent from another connection of the
   * same uid (feature `carbons`, server with MULTI_DEVICE=true), or a message to yourself.
   * `to` is then the peer of the conversation.
   */
  own: boolean
}

export interface BoundInfo {
  uid: string
  /** The highest mid addressed to this user so far. */
  mid: string
  /** The server did not know the `since` position: reload history instead of trusting local state. */
  reset: boolean
  /** The features the server accepted ([] from a server without them, or when none were asked for). */
  features: Feature[]
  /** The longest message the server takes, in characters: told when features were asked for. */
  maxMessageLength?: number
}

/** A receipt (feature `receipts`): every message you sent `peer` with a mid ≤ `mid` is delivered, or read. */
export interface Receipt {
  peer: string
  /** 'read' implies 'delivered'. */
  status: 'delivered' | 'read'
  /** A high-water mark: it never goes down, and the client emits only increases. */
  mid: string
}

/** Feature `typing`: `typing` turns true on a notice from `peer`, false after `typingTimeoutMs` or their message. */
export interface TypingEvent {
  peer: string
  typing: boolean
}

/** Feature `presence`: the state of a watched peer, once after `watch` (and every re-bind), then on every change. */
export interface PresenceEvent {
  peer: string
  online: boolean
}

export interface DuetClientEvents {
  message: ChatMessage
  bound: BoundInfo
  /** The peer whose conversation is now open. */
  joined: string
  /** The peer whose conversation was left ("" if none was open). */
  exited: string
  state: ConnectionState
  receipt: Receipt
  typing: TypingEvent
  presence: PresenceEvent
  /** Errors no request is waiting for, e.g. 409 (replaced by a newer connection) or 406 (auth). */
  error: DuetError
  /** Every frame the server sent, for logging or extensions (frames of unknown codes too). */
  frame: ServerFrame
}
