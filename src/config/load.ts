// Reads the environment against the schema (schema.ts), once at start. A bad value stops the
// server with a message naming the variable, the value and what is expected; every problem is
// reported at once. Values are trimmed, and an empty one counts as unset.
import { hostname } from 'node:os'
import { KindGuard, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { allowedHostEntry } from '../net/allowed-hosts.js'
import { originOf } from '../net/allowed-origins.js'
import { ConfigSchema, envName, WEBHOOK_SECRET_MIN, type Config, type ConfigKey, type VariableNotes } from './schema.js'

export class ConfigError extends Error {
  override name = 'ConfigError'
}

type Env = Record<string, string | undefined>
type Annotated = TSchema & VariableNotes

const TRUE = ['true', '1', 'yes', 'on']
const FALSE = ['false', '0', 'no', 'off']

/** Defaults that depend on where the server runs, so the schema cannot hold them. */
const computedDefaults: Partial<{ [K in ConfigKey]: () => Config[K] }> = {
  // Pretty for a person at a terminal, JSON for anything that collects logs.
  logPretty: () => process.stdout.isTTY === true,
  nodeId: () => `${hostname()}-${process.pid}`,
}

/** One variable: its schema, the type inside `unset(…)`, and a compiled check of that type. */
interface Variable {
  key: ConfigKey
  name: string
  schema: Annotated
  type: Annotated
  check: TypeCheck<TSchema>
  /** For lists: the check of one entry. */
  entry: { schema: Annotated; check: TypeCheck<TSchema> } | undefined
}

/** The type a variable holds when set: `unset(T)` is a union of T and undefined. */
export function typeOf(schema: TSchema): Annotated {
  if (KindGuard.IsUnion(schema) && schema.anyOf.some((s) => KindGuard.IsUndefined(s))) {
    return schema.anyOf.find((s) => !KindGuard.IsUndefined(s))!
  }
  return schema
}

const variables: Variable[] = Object.entries(ConfigSchema.properties).map(([key, schema]) => {
  const type = typeOf(schema)
  const entry = KindGuard.IsArray(type) ? { schema: type.items as Annotated, check: TypeCompiler.Compile(type.items) } : undefined
  return { key: key as ConfigKey, name: envName(key), schema, type, check: TypeCompiler.Compile(type), entry }
})
const wholeCheck = TypeCompiler.Compile(ConfigSchema)

/** What a valid value of `type` looks like, in words. */
export function expectedOf(type: Annotated): string {
  if (type.expected !== undefined) return type.expected
  if (KindGuard.IsInteger(type)) return `an integer from ${type.minimum} to ${type.maximum}`
  if (KindGuard.IsNumber(type)) return `a number from ${type.minimum} to ${type.maximum}`
  if (KindGuard.IsBoolean(type)) return 'true or false'
  if (KindGuard.IsUnion(type)) return `one of ${type.anyOf.map((s) => String(s.const)).join(', ')}`
  return 'a string'
}

/** The text of a variable as the type it declares; text that is not one stays text, for the check to refuse. */
function fromText(text: string, type: TSchema): unknown {
  if (KindGuard.IsInteger(type)) return /^-?\d+$/.test(text) ? Number(text) : text
  if (KindGuard.IsNumber(type)) return Number.isFinite(Number(text)) ? Number(text) : text
  if (KindGuard.IsBoolean(type)) {
    const word = text.toLowerCase()
    return TRUE.includes(word) ? true : FALSE.includes(word) ? false : text
  }
  if (KindGuard.IsArray(type)) {
    const items = text
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '')
    return items.length === 0 ? undefined : items
  }
  return text
}

/** A URL may carry a password: name its scheme only. */
const schemeOf = (text: string): string => {
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(text)?.[0]
  return scheme === undefined ? 'one without a scheme' : `one starting ${JSON.stringify(scheme)}`
}

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = []
  const values: Record<string, unknown> = {}
  for (const { key, name, schema, type, check, entry } of variables) {
    const text = env[name]?.trim()
    if (text === undefined || text === '') {
      values[key] = schema.default ?? computedDefaults[key]?.()
      continue
    }
    const value = fromText(text, type)
    values[key] = value
    const valid: boolean = value === undefined || check.Check(value) // a boolean: a type guard would narrow value to never
    if (valid) continue
    if (entry !== undefined && Array.isArray(value)) {
      for (const item of value) {
        if (!entry.check.Check(item)) problems.push(`${name}: ${JSON.stringify(item)}: expected ${expectedOf(entry.schema)}`)
      }
    } else if (type.sensitive === true) {
      problems.push(`${name}: expected ${expectedOf(type)}, got ${schemeOf(text)}`)
    } else {
      problems.push(`${name}=${JSON.stringify(text)}: expected ${expectedOf(type)}`)
    }
  }
  problems.push(...crossProblems(values))
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`)
  // Every value was checked one by one; this catches a schema whose defaults break it.
  if (!wholeCheck.Check(values)) {
    const first = wholeCheck.Errors(values).First()
    throw new Error(`configuration schema and loader disagree at ${first?.path}: ${first?.message}`)
  }
  return normalised(values as Config)
}

/** Rules between variables. */
function crossProblems(values: Record<string, unknown>): string[] {
  const problems: string[] = []
  const storeUrl = String(values.storeUrl)
  if (values.redisUrl !== undefined && !/^postgres(ql)?:\/\//.test(storeUrl)) {
    problems.push(
      'REDIS_URL is set (cluster mode) but STORE_URL is not postgres://…: every node must share one store, ' +
        'or a message stored on one node is lost to the others. Set STORE_URL=postgres://user@host/db.',
    )
  }
  if (values.jwtSecret !== undefined && values.jwtPublicKey !== undefined) {
    problems.push('JWT_SECRET and JWT_PUBLIC_KEY: set one of them, not both')
  }
  // A bearer token is one word (RFC 6750's token68): a token with a space could never be sent.
  // Trimmed already, so any whitespace left is inside it; the token itself is never echoed.
  if (typeof values.adminToken === 'string' && /\s/.test(values.adminToken)) {
    problems.push('ADMIN_TOKEN: a bearer token is one word; this one has whitespace inside it')
  }
  const webhookSecret = values.webhookSecret as string | undefined
  if (values.webhookUrl !== undefined && (webhookSecret === undefined || [...webhookSecret].length < WEBHOOK_SECRET_MIN)) {
    // The secret itself is never echoed: its length says what is wrong.
    const got = webhookSecret === undefined ? 'it is unset' : `it has ${[...webhookSecret].length}`
    problems.push(`WEBHOOK_SECRET: WEBHOOK_URL is set, so WEBHOOK_SECRET must have ${WEBHOOK_SECRET_MIN} or more characters; ${got}`)
  }
  return problems
}

/** Values the schema checked as written, in the form the server compares them in. */
function normalised(config: Config): Config {
  return {
    ...config,
    jwtPublicKey: config.jwtPublicKey?.replaceAll('\\n', '\n'),
    allowedOrigins: config.allowedOrigins?.map((entry) => originOf(entry)!),
    allowedHosts: config.allowedHosts?.map((entry) => allowedHostEntry(entry)!),
  }
}
