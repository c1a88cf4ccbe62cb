// The one table of protocol codes. PROTOCOL.md and the README render this table;
// test/protocol/codes.test.ts fails when the docs drift from it.

export const Code = {
  MESSAGE: 200,
  BOUND: 201,
  JOINED: 202,
  EXITED: 203,
  SENT: 204,
  RECEIPT: 205,
  TYPING: 206,
  PRESENCE: 207,
  UNWATCHED: 208,
  BAD_FRAME: 400,
  NOT_JSON: 401,
  NOT_BOUND: 402,
  ALREADY_BOUND: 403,
  UNKNOWN_TYPE: 404,
  UID_MISMATCH: 405,
  AUTH_FAILED: 406,
  REPLACED: 409,
  TOO_LONG: 413,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  SHUTTING_DOWN: 503,
} as const

export type Code = (typeof Code)[keyof typeof Code]

export interface CodeInfo {
  code: Code
  /** The frame `type` the server puts on it; "as sent" echoes the client's type. */
  type: string
  error: boolean
  meaning: string
}

export const CODE_TABLE: readonly CodeInfo[] = [
  { code: Code.MESSAGE, type: 'send', error: false, meaning: 'an incoming chat message: `msg` = text, `uid` = sender, `touid` = you' },
  { code: Code.BOUND, type: 'bind', error: false, meaning: 'bound; carries `mid` (your position) and `reset` when `since` was ahead' },
  { code: Code.JOINED, type: 'join', error: false, meaning: 'joined the conversation with `touid`' },
  { code: Code.EXITED, type: 'exit', error: false, meaning: 'left the conversation' },
  { code: Code.SENT, type: 'send', error: false, meaning: 'ack to the sender: the message is stored; carries `mid`, `ts`, `touid`' },
  { code: Code.RECEIPT, type: 'receipt', error: false, meaning: '(feature `receipts`) `uid` received (`msg` `delivered`) or read (`msg` `read`) every message you sent them with a mid up to `mid`' },
  { code: Code.TYPING, type: 'typing', error: false, meaning: '(feature `typing`) `uid` is typing to you; show it for about 5 s after the last one' },
  { code: Code.PRESENCE, type: 'presence', error: false, meaning: '(feature `presence`) `uid` is `online` or `offline` (`msg`): the answer to `watch`, then on every change' },
  { code: Code.UNWATCHED, type: 'unwatch', error: false, meaning: '`touid` is no longer watched' },
  { code: Code.BAD_FRAME, type: 'as sent', error: true, meaning: 'frame fails the schema; `msg` names the field' },
  { code: Code.NOT_JSON, type: '', error: true, meaning: 'not JSON, or not a JSON object' },
  { code: Code.NOT_BOUND, type: 'as sent', error: true, meaning: 'not bound: bind first' },
  { code: Code.ALREADY_BOUND, type: 'bind', error: true, meaning: 'this connection is already bound' },
  { code: Code.UNKNOWN_TYPE, type: 'as sent', error: true, meaning: 'unknown `type`' },
  { code: Code.UID_MISMATCH, type: 'as sent', error: true, meaning: '`uid` in the frame differs from the bound uid' },
  { code: Code.AUTH_FAILED, type: 'bind', error: true, meaning: 'authentication failed' },
  { code: Code.REPLACED, type: 'bind', error: true, meaning: 'this connection is replaced by a newer bind of the same uid and is closed' },
  { code: Code.TOO_LONG, type: 'send', error: true, meaning: '`msg` longer than MAX_MESSAGE_LENGTH' },
  { code: Code.RATE_LIMITED, type: 'as sent', error: true, meaning: 'rate limit exceeded; the frame was not processed' },
  { code: Code.INTERNAL, type: 'as sent', error: true, meaning: 'internal failure: the message was NOT stored (on join: the conversation was not opened); safe to retry' },
  { code: Code.SHUTTING_DOWN, type: 'as sent', error: true, meaning: 'the server is shutting down; reconnect elsewhere (the frame every connection gets at shutdown, unasked, has `type` `""`)' },
]

/** WebSocket close codes the server uses. */
export const Close = {
  GOING_AWAY: 1001,
  UNSUPPORTED_DATA: 1003,
  POLICY_VIOLATION: 1008,
  TOO_BIG: 1009,
  TRY_AGAIN_LATER: 1013,
  REPLACED: 4009,
  KICKED: 4001,
  /** The user was erased (DELETE /admin/users/:uid): every message to or from them is gone. */
  ERASED: 4003,
} as const
