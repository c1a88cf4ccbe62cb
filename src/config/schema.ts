// The environment, described once: every variable's type, range, default and meaning. load.ts
// reads the environment against it, and the README's configuration table is generated from it
// (`npm run docs:config`; test/config-docs.test.ts fails when they differ). A key's variable is
// its name in upper snake case (maxConnectionsPerIp → MAX_CONNECTIONS_PER_IP).
import { FormatRegistry, Type, type Static, type TSchema } from '@sinclair/typebox'
import { allowedHostEntry } from '../net/allowed-hosts.js'
import { originOf } from '../net/allowed-origins.js'

/** Annotations beside JSON Schema's, read by load.ts and the README generator. */
export interface VariableNotes {
  /** The README's default when the schema has no `default` (computed at start, or unset with a meaning). */
  defaultText?: string
  /** What a valid value looks like, for a string that a format or pattern checks. */
  expected?: string
  /** The value may carry a password: an error names its scheme only. */
  sensitive?: boolean
  /** The README's "values" entry for a string. */
  valuesText?: string
}

export const DEFAULT_RATE_LIMIT = 200
export const DEFAULT_STORE_URL = 'sqlite:./data/duet.db'
/** Shorter HS256 secrets are allowed, with a warning at start: they can be guessed offline. */
export const JWT_SECRET_MIN = 32
/** WEBHOOK_SECRET: receivers check signatures with it, so it must not be guessable. */
export const WEBHOOK_SECRET_MIN = 32
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

FormatRegistry.Set('origin', (value) => originOf(value) !== undefined)
FormatRegistry.Set('allowed-host', (value) => allowedHostEntry(value) !== undefined)
// What the webhook's HTTP client will parse: a pattern let through hosts with spaces or bad ports.
FormatRegistry.Set('http-url', (value) => {
  const url = URL.canParse(value) ? new URL(value) : undefined
  return url !== undefined && (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== ''
})

const integer = (minimum: number, maximum: number, fallback: number, description: string): ReturnType<typeof Type.Integer> =>
  Type.Integer({ minimum, maximum, default: fallback, description })
const flag = (fallback: boolean, description: string): ReturnType<typeof Type.Boolean> => Type.Boolean({ default: fallback, description })
/** A variable that may be left unset: undefined in the Config. */
function unset<T extends TSchema>(schema: T, description: string, notes: VariableNotes = {}): ReturnType<typeof Type.Union<[T, ReturnType<typeof Type.Undefined>]>> {
  return Type.Union([schema, Type.Undefined()], { description, ...notes })
}

export const ConfigSchema = Type.Object({
  port: integer(0, 65535, 3000, 'HTTP and WebSocket port'),
  host: Type.String({
    default: '127.0.0.1',
    valuesText: 'address or name',
    description:
      'address to listen on; anything but loopback (judged by the addresses a name resolves to) needs JWT auth and `ADMIN_TOKEN` ' +
      '(or `ALLOW_INSECURE`); on loopback, requests must name a loopback host in `Host` (see `ALLOWED_HOSTS`)',
  }),
  logLevel: Type.Union(
    LOG_LEVELS.map((level) => Type.Literal(level)),
    { default: 'info', description: 'the least severe level logged; `silent` logs nothing' },
  ),
  logPretty: Type.Boolean({ defaultText: '`false`, or `true` when stdout is a terminal', description: 'human-readable logs instead of JSON' }),
  nodeId: Type.String({ defaultText: 'hostname-pid', valuesText: 'text', description: "the node's name in logs, admin output and metrics" }),
  storeUrl: Type.String({
    default: DEFAULT_STORE_URL,
    pattern: '^(memory:$|memory://$|sqlite:.+|postgres(ql)?://.+)',
    expected: 'sqlite:<path> (e.g. sqlite:./data/duet.db), postgres://user@host:5432/db or memory:',
    sensitive: true,
    valuesText: 'URL',
    description: '`sqlite:<path>`, `postgres://…` or `memory:` (see Storage)',
  }),
  retentionDays: unset(Type.Number({ minimum: 0.001, maximum: 365_000 }), 'delete messages older than this many days (unset = keep forever)'),
  maxMessageLength: integer(1, 1 << 20, 4096, 'longest `msg`, in characters (longer → `413`)'),
  maxPayloadBytes: integer(64, 64 << 20, 65536, 'largest WebSocket frame (larger → close `1009`)'),
  multiDevice: flag(false, 'keep every connection of a uid instead of replacing the older one (and offer the `carbons` feature)'),
  readReceipts: flag(true, 'send read receipts (`205` `read`) to senders that asked for `receipts`; `false` = delivered receipts only, server-wide'),
  maxWatched: integer(1, 1_000_000, 1000, 'uids one connection may `watch` for presence (more → `400`)'),
  wsDeflate: flag(false, 'negotiate permessage-deflate (saves bandwidth, costs CPU per frame)'),
  adminToken: unset(
    Type.String(),
    "bearer token for the admin routes and `/metrics`, and for reading any user's data; unset = admin routes answer direct " +
      'loopback clients only (never a request with `Forwarded`, `X-Forwarded-For` or `X-Real-IP`)',
    { valuesText: 'text' },
  ),
  jwtSecret: unset(
    Type.String(),
    `HS256 secret; turns auth on. Use ${JWT_SECRET_MIN} or more random characters: a shorter one is accepted with a warning at start`,
    { valuesText: 'text' },
  ),
  jwtPublicKey: unset(
    Type.String(),
    'PEM public key, RSA (RS256) or P-256 (ES256), literal `\\n` read as a newline; turns auth on. Set this or `JWT_SECRET`, not both',
    { valuesText: 'PEM' },
  ),
  jwtIssuer: unset(Type.String(), 'required `iss` claim', { valuesText: 'text' }),
  jwtAudience: unset(Type.String(), 'required `aud` claim', { valuesText: 'text' }),
  jwtClockTolerance: integer(0, 3600, 0, "seconds of clock skew allowed on `exp` and `nbf` (e.g. `5` when the token issuer's clock may run apart from the server's)"),
  jwtRequireExp: flag(false, 'refuse tokens without `exp` (by default `exp` is checked when present)'),
  allowInsecure: flag(false, 'start on a non-loopback `HOST` without JWT auth or `ADMIN_TOKEN` (logged at error level)'),
  allowedOrigins: unset(
    Type.Array(Type.String({ format: 'origin', expected: 'an origin, scheme://host[:port] like https://chat.example, without path or wildcard' }), {
      valuesText: 'comma-separated origins',
    }),
    'browser origins allowed to open `/ws`; an entry that is not an origin (no scheme, `*`, a path) stops the start',
    { defaultText: 'unset (any)' },
  ),
  allowedHosts: unset(
    Type.Array(Type.String({ format: 'allowed-host', expected: 'a host name or address like chat.example or 10.0.0.5, without scheme, port or wildcard' }), {
      valuesText: 'comma-separated host names',
    }),
    'host names served besides `localhost`, `127.x.x.x` and `[::1]` when the `Host` header is checked: always while `HOST` is ' +
      'loopback (against DNS rebinding), and on any `HOST` once this is set; other hosts get `403`',
  ),
  rateLimit: integer(0, 1_000_000, DEFAULT_RATE_LIMIT, 'frames per second per connection; `0` turns the rate limit off'),
  rateBurst: unset(Type.Number({ minimum: 1, maximum: 1_000_000 }), 'frames a connection may send at once', { defaultText: '2 × `RATE_LIMIT`' }),
  maxConnections: integer(1, 10_000_000, 50_000, 'open WebSockets in total (over → upgrade refused with `503`)'),
  maxConnectionsPerIp: integer(
    1,
    10_000_000,
    1000,
    'connections from one client address: open WebSockets, connections that have not sent their request (head and body) yet, ' +
      'and kept-alive ones waiting for their next request, which give way to a new connection (over → upgrade `429`, new connection closed at once)',
  ),
  headersTimeoutMs: integer(
    100,
    600_000,
    10_000,
    'a connection that has not sent its whole first request (head and body) by then gets `408` and is closed; a later request on a kept-alive connection, within 30 s after it',
  ),
  maxBindAttempts: integer(1, 1000, 10, 'bind frames per connection, successful or not (over → close `1008`)'),
  heartbeatMs: integer(0, 3_600_000, 30_000, 'ping interval; a connection that misses a pong is terminated; `0` = off'),
  slowConsumerBytes: integer(1024, 1 << 30, 1 << 20, 'unsent bytes per connection (replies held for frame order included) before it is closed with `1013`'),
  shutdownTimeoutMs: integer(100, 600_000, 10_000, 'longest graceful shutdown, after which the process exits anyway'),
  trustProxy: flag(false, 'take the client address from `X-Forwarded-For` (behind your own proxy only)'),
  redisUrl: unset(
    Type.String({ pattern: '^rediss?://.+', expected: 'redis://host:port (or rediss:// for TLS)', sensitive: true, valuesText: 'URL' }),
    'cluster mode: presence and cross-node delivery on Redis; needs `STORE_URL=postgres://…`',
  ),
  redisPrefix: Type.String({ default: 'duet:', valuesText: 'text', description: 'prefix of every Redis key and channel, so several clusters can share one Redis' }),
  presenceLeaseMs: integer(300, 600_000, 15_000, "how long a node's presence outlives its last heartbeat (renewed every third of it)"),
  webhookUrl: unset(
    Type.String({ format: 'http-url', expected: 'an http:// or https:// URL', sensitive: true, valuesText: 'URL' }),
    'POST a signed `message.offline` event here for every message stored for a recipient with no live connection (see Webhooks); unset = off',
  ),
  webhookSecret: unset(
    Type.String(),
    `HMAC-SHA256 key of \`Duet-Signature\`; required with \`WEBHOOK_URL\`, ${WEBHOOK_SECRET_MIN} or more characters, or the server refuses to start`,
    { valuesText: 'text' },
  ),
  webhookTimeoutMs: integer(100, 600_000, 5000, 'a webhook request not answered by then counts as failed, and is retried'),
  webhookMaxAttempts: integer(1, 1000, 10, 'tries per webhook event before it is marked failed (`GET /admin/webhooks`)'),
  webhookConcurrency: integer(1, 1000, 8, 'webhook requests in flight per node'),
})

export type Config = Static<typeof ConfigSchema>
export type ConfigKey = keyof Config

/** The environment variable of a Config key. */
export const envName = (key: string): string => key.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()
