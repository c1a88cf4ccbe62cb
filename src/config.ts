// Configuration from the environment, validated once at start. A bad value stops the
// server with a message naming the variable, the value and what is expected.
import { hostname } from 'node:os'

export interface Config {
  port: number
  host: string
  logLevel: string
  logPretty: boolean
  adminToken: string | undefined
  maxMessageLength: number
  maxPayloadBytes: number
  multiDevice: boolean
  storeUrl: string
  retentionDays: number | undefined
  nodeId: string
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

type Env = Record<string, string | undefined>

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export const DEFAULT_STORE_URL = 'memory:'

export function loadConfig(env: Env = process.env): Config {
  const read = new EnvReader(env)
  const config: Config = {
    port: read.integer('PORT', 3000, 0, 65535),
    host: read.string('HOST', '127.0.0.1'),
    logLevel: read.oneOf('LOG_LEVEL', 'info', LOG_LEVELS),
    logPretty: read.boolean('LOG_PRETTY', false),
    adminToken: read.optionalString('ADMIN_TOKEN'),
    maxMessageLength: read.integer('MAX_MESSAGE_LENGTH', 4096, 1, 1 << 20),
    maxPayloadBytes: read.integer('MAX_PAYLOAD_BYTES', 65536, 256, 64 << 20),
    multiDevice: read.boolean('MULTI_DEVICE', false),
    storeUrl: read.string('STORE_URL', DEFAULT_STORE_URL),
    retentionDays: read.optionalNumber('RETENTION_DAYS', 0.001, 365_000),
    nodeId: read.string('NODE_ID', `${hostname()}-${process.pid}`),
  }
  read.throwIfInvalid()
  return config
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
