// TypeBox schemas of every frame on /ws. The validators (parse.ts), the serializer
// (frames.ts), the AsyncAPI/OpenAPI docs and the typed client all derive from these.
import { FormatRegistry, Type, type Static } from '@sinclair/typebox'

export const UID_MAX = 128
export const REF_MAX = 64
/** A bind's `features`: a few short names; more or longer is a 400, not a way to make the server work. */
export const FEATURES_MAX = 16
export const FEATURE_NAME_MAX = 32

/**
 * Ids and text are refused unless they can be stored as they were sent, so what is stored is
 * what was acked: no NUL (PostgreSQL cannot store it, and no client means it) and no lone
 * UTF-16 surrogate (the stores keep UTF-8, which has no encoding for one: it would come back
 * from history as U+FFFD). A format rather than a pattern: two native scans, where a regular
 * expression walks the string in JavaScript's regexp engine on every frame. Registered here
 * for TypeBox (the WS frames); app.ts registers the same function with Fastify's Ajv (REST).
 */
export const STORABLE_TEXT = 'storable-text'
export const isStorableText = (value: string): boolean => value.isWellFormed() && !value.includes('\u0000')
FormatRegistry.Set(STORABLE_TEXT, isStorableText)

const storable = { format: STORABLE_TEXT }

export const Uid = Type.String({ minLength: 1, maxLength: UID_MAX, ...storable, description: 'a user id (no NUL, no lone UTF-16 surrogate)' })
export const Ref = Type.String({ maxLength: REF_MAX, ...storable, description: 'client correlation id, echoed on every direct reply (no NUL, no lone UTF-16 surrogate)' })
export const Mid = Type.String({ pattern: '^[0-9]{1,20}$', description: 'server message id: digits, strictly increasing per recipient' })

export const BindFrame = Type.Object(
  {
    type: Type.Literal('bind'),
    uid: Uid,
    token: Type.Optional(Type.String({ maxLength: 8192, description: 'JWT whose `sub` is `uid` (when auth is on)' })),
    // Any string of digits: one beyond every mid the store could hold is still a position (reset).
    since: Type.Optional(Type.String({ pattern: '^[0-9]{1,64}$', description: 'the highest mid the client has seen' })),
    features: Type.Optional(
      Type.Array(Type.String({ maxLength: FEATURE_NAME_MAX }), {
        maxItems: FEATURES_MAX,
        description: 'opt-in signals: `receipts`, `typing`, `presence`, `carbons`; unknown names are ignored (not echoed)',
      }),
    ),
    ref: Type.Optional(Ref),
  },
  { $id: 'BindFrame', description: 'Bind this connection to `uid`.' },
)

export const SendFrame = Type.Object(
  {
    type: Type.Literal('send'),
    uid: Type.Optional(Uid),
    touid: Uid,
    msg: Type.String({ minLength: 1, ...storable, description: 'the message text: not empty, no NUL, no lone UTF-16 surrogate' }),
    ref: Type.Optional(Ref),
  },
  { $id: 'SendFrame', description: 'Send `msg` to `touid`.' },
)

/** A frame that names a peer and nothing more: join, typing, watch, unwatch. */
const peerFrame = <T extends string>(type: T, id: string, description: string) =>
  Type.Object({ type: Type.Literal(type), uid: Type.Optional(Uid), touid: Uid, ref: Type.Optional(Ref) }, { $id: id, description })

export const JoinFrame = peerFrame('join', 'JoinFrame', 'Open the conversation with `touid`: their messages are read.')

export const ExitFrame = Type.Object(
  {
    type: Type.Literal('exit'),
    uid: Type.Optional(Uid),
    touid: Type.Optional(Type.String({ maxLength: UID_MAX, ...storable, description: 'ignored: exit leaves whatever conversation is open' })),
    ref: Type.Optional(Ref),
  },
  { $id: 'ExitFrame', description: 'Leave the open conversation.' },
)

export const TypingFrame = peerFrame('typing', 'TypingFrame', 'Tell `touid` that you are typing. No reply when it succeeds.')

export const WatchFrame = peerFrame('watch', 'WatchFrame', "Follow `touid`'s presence (feature `presence`): answered with 207, then a 207 on every change.")

export const UnwatchFrame = peerFrame('unwatch', 'UnwatchFrame', "Stop following `touid`'s presence: answered with 208.")

export const ClientFrameSchemas = {
  bind: BindFrame,
  send: SendFrame,
  join: JoinFrame,
  exit: ExitFrame,
  typing: TypingFrame,
  watch: WatchFrame,
  unwatch: UnwatchFrame,
} as const
export type ClientFrameType = keyof typeof ClientFrameSchemas

export type BindFrame = Static<typeof BindFrame>
export type SendFrame = Static<typeof SendFrame>
export type JoinFrame = Static<typeof JoinFrame>
export type ExitFrame = Static<typeof ExitFrame>
export type TypingFrame = Static<typeof TypingFrame>
export type WatchFrame = Static<typeof WatchFrame>
export type UnwatchFrame = Static<typeof UnwatchFrame>
export type ClientFrame = BindFrame | SendFrame | JoinFrame | ExitFrame | TypingFrame | WatchFrame | UnwatchFrame

export const ServerFrame = Type.Object(
  {
    type: Type.String({ description: 'the event this frame answers: bind, send, join, exit, typing, watch, unwatch; receipt, presence; or "" if unreadable' }),
    error: Type.Boolean(),
    code: Type.Integer({ description: 'see the code table' }),
    msg: Type.String({ description: 'error text, or the chat message on code 200' }),
    uid: Type.String({ description: 'sender on 200; the bound uid on bind replies; "" where it does not apply' }),
    touid: Type.String({ description: 'recipient on 200 and 204; the peer on 202/203; "" where it does not apply' }),
    ref: Type.Optional(Ref),
    mid: Type.Optional(Mid),
    ts: Type.Optional(Type.Integer({ description: 'server time, ms since epoch' })),
    offline: Type.Optional(Type.Boolean({ description: 'true on messages replayed at bind' })),
    reset: Type.Optional(Type.Boolean({ description: 'true on 201 when `since` was ahead of the store' })),
    features: Type.Optional(
      Type.Array(Type.String(), { description: 'on 201, only when the bind asked for features: the ones accepted, in the order asked' }),
    ),
    maxMessageLength: Type.Optional(
      Type.Integer({ description: 'on 201, only when the bind asked for features: the longest `msg` the server takes, in characters (MAX_MESSAGE_LENGTH)' }),
    ),
  },
  { $id: 'ServerFrame', description: 'Every server frame carries the six seed fields.' },
)
export type ServerFrame = Static<typeof ServerFrame>
