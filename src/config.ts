// Configuration from the environment, validated once at start. A bad value stops the
// server with a message naming the variable, the value and what is expected.
import { hostname } from 'node:os'
import { allowedHostEntry } from './net/allowed-hosts.js'
import { isLoopbackHost, type HostLookup } from './net/loopback.js'

export interface Config {
  port: number
  host: string
  logLevel: string
  logPretty: boolean
  adminToken: string | undefined
  maxMessageLength: number
  maxPayloadBytes: number
  /** Offer permessage-deflate: less bandwidth for long messages, far more CPU and memory per connection. */
  wsDeflate: boolean
  multiDevice: boolean
  storeUrl: string
  retentionDays: number | undefined
  nodeId: string
  /** HS256 secret; auth is on when this or jwtPublicKey is set. */
  jwtSecret: string | undefined
  /** PEM public key (RS256 or ES256); literal `\n` in the env counts as a newline. */
  jwtPublicKey: string | undefined
  jwtIssuer: string | undefined
  jwtAudience: string | undefined
  /** Seconds of clock skew allowed on exp and nbf. */
  jwtClockTolerance: number
  /** Refuse tokens without exp (else exp is checked when present). */
  jwtRequireExp: boolean
  /** Refuse nothing at start even when exposed without auth (logged loudly). */
  allowInsecure: boolean
  /** Browser origins allowed to open /ws; undefined = any. */
  allowedOrigins: string[] | undefined
  /** Host names served besides loopback ones when the Host header is checked (HOST on loopback, or this set). */
  allowedHosts: string[] | undefined
  /** A connection that has not sent its request head within this is closed (408). */
  headersTimeoutMs: number
  /** Frames per second per connection (token bucket refill); 0 = no limit. */
  rateLimit: number
  /** Token bucket size: frames a connection may send at once; undefined = 2 × rateLimit. */
  rateBurst: number | undefined
  maxConnections: number
  maxConnectionsPerIp: number
  maxBindAttempts: number
  /** Ping interval; a socket that missed the previous pong is terminated. 0 = off. */
  heartbeatMs: number
  /** A connection whose unsent buffer passes this is closed with 1013. */
  slowConsumerBytes: number
  /** Upper bound on a graceful shutdown before the process exits anyway. */
  shutdownTimeoutMs: number
  /** Trust X-Forwarded-For from a reverse proxy for the client address (per-IP limits, logs). */
  trustProxy: boolean
  /** Set: cluster mode, presence and cross-node delivery on Redis. Unset: one node, in process. */
  redisUrl: string | undefined
  /** Prefix of every Redis key and channel, so several clusters can share one Redis. */
  redisPrefix: string
  /** How long a node's presence outlives its last heartbeat (renewed every third of it). */
  presenceLeaseMs: number
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

type Env = Record<string, string | undefined>

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export const DEFAULT_RATE_LIMIT = 200
/** Shorter HS256 secrets are allowed, with a warning at start: they can be guessed offline. */
export const JWT_SECRET_MIN = 32

export const DEFAULT_STORE_URL = 'sqlite:./data/duet.db'

export function loadConfig(env: Env = process.env): Config {
  const read = new EnvReader(env)
  const config: Config = {
    port: read.integer('PORT', 3000, 0, 65535),
    host: read.string('HOST', '127.0.0.1'),
    logLevel: read.oneOf('LOG_LEVEL', 'info', LOG_LEVELS),
    // Pretty for a person at a terminal, JSON for anything that collects logs.
    logPretty: read.boolean('LOG_PRETTY', process.stdout.isTTY === true),
    adminToken: read.optionalString('ADMIN_TOKEN'),
    maxMessageLength: read.integer('MAX_MESSAGE_LENGTH', 4096, 1, 1 << 20),
    maxPayloadBytes: read.integer('MAX_PAYLOAD_BYTES', 65536, 64, 64 << 20),
    wsDeflate: read.boolean('WS_DEFLATE', false),
    multiDevice: read.boolean('MULTI_DEVICE', false),
    storeUrl: read.string('STORE_URL', DEFAULT_STORE_URL),
    retentionDays: read.optionalNumber('RETENTION_DAYS', 0.001, 365_000),
    nodeId: read.string('NODE_ID', `${hostname()}-${process.pid}`),
    jwtSecret: read.optionalString('JWT_SECRET'),
    jwtPublicKey: read.optionalString('JWT_PUBLIC_KEY')?.replaceAll('\\n', '\n'),
    jwtIssuer: read.optionalString('JWT_ISSUER'),
    jwtAudience: read.optionalString('JWT_AUDIENCE'),
    jwtClockTolerance: read.integer('JWT_CLOCK_TOLERANCE', 0, 0, 3600),
    jwtRequireExp: read.boolean('JWT_REQUIRE_EXP', false),
    allowInsecure: read.boolean('ALLOW_INSECURE', false),
    allowedOrigins: read.optionalList('ALLOWED_ORIGINS'),
    allowedHosts: read.optionalList('ALLOWED_HOSTS'),
    headersTimeoutMs: read.integer('HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
    rateLimit: read.integer('RATE_LIMIT', DEFAULT_RATE_LIMIT, 0, 1_000_000),
    rateBurst: read.optionalNumber('RATE_BURST', 1, 1_000_000),
    maxConnections: read.integer('MAX_CONNECTIONS', 50_000, 1, 10_000_000),
    maxConnectionsPerIp: read.integer('MAX_CONNECTIONS_PER_IP', 1000, 1, 10_000_000),
    maxBindAttempts: read.integer('MAX_BIND_ATTEMPTS', 10, 1, 1000),
    heartbeatMs: read.integer('HEARTBEAT_MS', 30_000, 0, 3_600_000),
    slowConsumerBytes: read.integer('SLOW_CONSUMER_BYTES', 1 << 20, 1024, 1 << 30),
    shutdownTimeoutMs: read.integer('SHUTDOWN_TIMEOUT_MS', 10_000, 100, 600_000),
    trustProxy: read.boolean('TRUST_PROXY', false),
    redisUrl: read.optionalString('REDIS_URL'),
    redisPrefix: read.string('REDIS_PREFIX', 'duet:'),
    presenceLeaseMs: read.integer('PRESENCE_LEASE_MS', 15_000, 300, 600_000),
  }
  if (!/^(memory:$|memory:\/\/$|sqlite:.+|postgres(ql)?:\/\/.+)/.test(config.storeUrl)) {
    read.problem(
      `STORE_URL: expected sqlite:<path> (e.g. sqlite:./data/duet.db), postgres://user@host:5432/db or memory:, ` +
        `got one starting ${JSON.stringify(config.storeUrl.split(':')[0] + ':')}`,
    )
  }
  if (config.redisUrl !== undefined && !/^rediss?:\/\/.+/.test(config.redisUrl)) {
    read.problem('REDIS_URL: expected redis://host:port (or rediss:// for TLS)')
  }
  if (config.redisUrl !== undefined && !/^postgres(ql)?:\/\//.test(config.storeUrl)) {
    read.problem(
      'REDIS_URL is set (cluster mode) but STORE_URL is not postgres://…: every node must share one store, ' +
        'or a message stored on one node is lost to the others. Set STORE_URL=postgres://user@host/db.',
    )
  }
  if (config.allowedHosts !== undefined) {
    const entries = config.allowedHosts.map((entry) => [entry, allowedHostEntry(entry)] as const)
    for (const [entry, host] of entries) {
      if (host === undefined) {
        read.problem(
          `ALLOWED_HOSTS: ${JSON.stringify(entry)} is not a host name or address: ` +
            'expected names like chat.example or 10.0.0.5, comma-separated, without scheme, port or wildcard',
        )
      }
    }
    config.allowedHosts = entries.flatMap(([, host]) => (host === undefined ? [] : [host]))
  }
  if (config.jwtSecret !== undefined && config.jwtPublicKey !== undefined) {
    read.problem('JWT_SECRET and JWT_PUBLIC_KEY: set one of them, not both')
  }
  read.throwIfInvalid()
  return config
}

/** True when auth on bind and on the user routes is configured. */
export function authEnabled(config: Pick<Config, 'jwtSecret' | 'jwtPublicKey'>): boolean {
  return config.jwtSecret !== undefined || config.jwtPublicKey !== undefined
}

/**
 * Refuses a configuration that exposes the server beyond loopback without JWT auth or
 * without ADMIN_TOKEN, unless ALLOW_INSECURE is set. Returns the reasons it let pass. HOST is
 * judged by the addresses it resolves to, not by how it is spelt.
 */
export async function checkExposure(config: Config, lookup?: HostLookup): Promise<string[]> {
  if (await isLoopbackHost(config.host, lookup)) return []
  const missing: string[] = []
  if (!authEnabled(config)) missing.push('JWT_SECRET or JWT_PUBLIC_KEY')
  if (config.adminToken === undefined) missing.push('ADMIN_TOKEN')
  if (missing.length === 0) return []
  if (!config.allowInsecure) {
    throw new ConfigError(
      `Refusing to listen on HOST=${config.host} without ${missing.join(' and ')}: ` +
        'anyone who reaches the port could impersonate users or read admin data. ' +
        'Set them, listen on 127.0.0.1, or set ALLOW_INSECURE=true to run exposed anyway.',
    )
  }
  return missing
}

class EnvReader {
  private readonly problems: string[] = []
  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    const value = this.env[name]
    return value === undefined || value.trim() === '' ? undefined : value.trim()
  }

  private bad(name: string, value: string, expected: string): void {
    this.problems.push(`${name}=${JSON.stringify(value)}: expected ${expected}`)
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback
  }

  optionalString(name: string): string | undefined {
    return this.raw(name)
  }

  /** A comma-separated list; unset or only commas = undefined. */
  optionalList(name: string): string[] | undefined {
    const items = (this.raw(name) ?? '')
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '')
    return items.length === 0 ? undefined : items
  }

  problem(text: string): void {
    this.problems.push(text)
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name)
    if (value === undefined) return fallback
    const parsed = Number(value)
    if (!/^-?\d+$/.test(value) || parsed < min || parsed > max) {
      this.bad(name, value, `an integer from ${min} to ${max}`)
      return fallback
    }
    return parsed
  }

  optionalNumber(name: string, min: number, max: number): number | undefined {
    const value = this.raw(name)
    if (value === undefined) return undefined
    const parsed = Number(value)
    if (!Number.isFinite(parsed) || parsed < min || parsed > max) {
      this.bad(name, value, `a number from ${min} to ${max}`)
      return undefined
    }
    return parsed
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase()
    if (value === undefined) return fallback
    if (['true', '1', 'yes', 'on'].includes(value)) return true
    if (['false', '0', 'no', 'off'].includes(value)) return false
    this.bad(name, value, 'true or false')
    return fallback
  }

  oneOf(name: string, fallback: string, allowed: string[]): string {
    const value = this.raw(name)
    if (value === undefined) return fallback
    if (!allowed.includes(value)) {
      this.bad(name, value, `one of ${allowed.join(', ')}`)
      return fallback
    }
    return value
  }

  throwIfInvalid(): void {
    if (this.problems.length > 0) {
      throw new ConfigError(`Invalid configuration:\n  ${this.problems.join('\n  ')}`)
    }
  }
}
