// The typed duet client: browser-safe (no Node imports), frame types from the server's
// TypeBox schemas. Usage: README.md, "The typed client".
export { DuetClient } from './client.js'
export { midAfter } from './mids.js'
export type {
  BoundInfo,
  ChatMessage,
  ConnectionState,
  DuetClientEvents,
  DuetClientOptions,
  PresenceEvent,
  Receipt,
  TypingEvent,
} from './types.js'
export { FEATURES, type Feature } from './features.js'
export { DuetError, CLIENT_CLOSED } from './duet-error.js'
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js'
export { DEFAULT_PACING, type PacingOptions } from './outbox.js'
export type { WebSocketConstructor, WebSocketLike } from './socket.js'
export { Close, Code } from '../protocol/codes.js'
export type { BindFrame, ExitFrame, JoinFrame, SendFrame, ServerFrame } from '../protocol/schemas.js'
