// What an app sees of the typed client: its options, its events and what they carry.
import type { ServerFrame } from '../protocol/schemas.js'
import type { DuetError } from './duet-error.js'
import type { BackoffOptions } from './backoff.js'
import type { WebSocketConstructor } from './socket.js'

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
}

export type ConnectionState = 'connecting' | 'bound' | 'reconnecting' | 'closed'

/** A chat message addressed to this user (a code 200 frame). */
export interface ChatMessage {
  mid: string
  from: string
  to: string
  text: string
  ts: number
  /** True when it was stored while this user was offline and replayed at bind. */
  offline: boolean
}

export interface BoundInfo {
  uid: string
  /** The highest mid addressed to this user so far. */
  mid: string
  /** The server did not know the `since` position: reload history instead of trusting local state. */
  reset: boolean
}

export interface DuetClientEvents {
  message: ChatMessage
  bound: BoundInfo
  /** The peer whose conversation is now open. */
  joined: string
  /** The peer whose conversation was left ("" if none was open). */
  exited: string
  state: ConnectionState
  /** Errors no request is waiting for, e.g. 409 (replaced by a newer connection) or 406 (auth). */
  error: DuetError
  /** Every frame the server sent, for logging or extensions. */
  frame: ServerFrame
}
