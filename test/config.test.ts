// Configuration is validated at start: a bad value is refused with a message naming it.
import t from 'tap'
import { ConfigError, loadConfig } from '../src/config/load.js'
import { DEFAULT_STORE_URL } from '../src/config/schema.js'

t.test('defaults', async (t) => {
  const config = loadConfig({})
  t.match(config, {
    port: 3000,
    host: '127.0.0.1',
    maxMessageLength: 4096,
    maxPayloadBytes: 65536,
    wsDeflate: false,
    multiDevice: false,
    readReceipts: true,
    maxWatched: 1000,
    storeUrl: DEFAULT_STORE_URL,
    redisUrl: undefined,
  })
  t.equal(DEFAULT_STORE_URL, 'sqlite:./data/duet.db')
})

t.test('bad values name the variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'abc' }, /PORT="abc": expected an integer/],
    [{ MAX_MESSAGE_LENGTH: '0' }, /MAX_MESSAGE_LENGTH/],
    [{ MULTI_DEVICE: 'maybe' }, /MULTI_DEVICE="maybe": expected true or false/],
    [{ READ_RECEIPTS: 'sometimes' }, /READ_RECEIPTS="sometimes": expected true or false/],
    [{ MAX_WATCHED: '0' }, /MAX_WATCHED/],
    [{ STORE_URL: 'mysql://db/chat' }, /STORE_URL: expected sqlite:<path>/],
    [{ STORE_URL: 'sqlite:' }, /STORE_URL: expected sqlite:<path>[^\n]*, got one starting "sqlite:"/],
    [{ STORE_URL: 'postgres:secret@db' }, /^(?![\s\S]*secret)[\s\S]*STORE_URL: expected [^\n]*got one starting "postgres:"/],
    [{ REDIS_URL: 'redis://127.0.0.1:6379' }, /REDIS_URL is set \(cluster mode\) but STORE_URL is not postgres/],
    [{ REDIS_URL: 'not-a-url', STORE_URL: 'postgres://db/x' }, /REDIS_URL: expected redis:\/\//],
    [{ ALLOWED_HOSTS: 'chat.example,http://chat.example' }, /ALLOWED_HOSTS: "http:\/\/chat\.example": expected a host name or address/],
    [{ ALLOWED_HOSTS: 'chat.example:8080' }, /ALLOWED_HOSTS: "chat\.example:8080": expected [^\n]*without scheme, port or wildcard/],
    [{ ALLOWED_HOSTS: '*.example' }, /ALLOWED_HOSTS: "\*\.example"/],
    [{ ALLOWED_ORIGINS: 'chat.example' }, /ALLOWED_ORIGINS: "chat\.example": expected an origin, scheme:\/\/host\[:port\]/],
    [{ ALLOWED_ORIGINS: 'https://ok.example,*' }, /ALLOWED_ORIGINS: "\*": expected an origin/],
    [{ ALLOWED_ORIGINS: 'https://*.example' }, /ALLOWED_ORIGINS: "https:\/\/\*\.example"/],
    [{ ALLOWED_ORIGINS: 'https://chat.example/app' }, /ALLOWED_ORIGINS: "https:\/\/chat\.example\/app": expected [^\n]*without path/],
    [{ ALLOWED_ORIGINS: 'null' }, /ALLOWED_ORIGINS: "null"/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL="loud": expected one of fatal, error, warn, info, debug, trace, silent/],
    [{ RETENTION_DAYS: 'forever' }, /RETENTION_DAYS="forever": expected a number from 0\.001 to 365000/],
    [{ PORT: '3e3' }, /PORT="3e3": expected an integer from 0 to 65535/],
    [{ HEADERS_TIMEOUT_MS: '10' }, /HEADERS_TIMEOUT_MS="10": expected an integer from 100 to 600000/],
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
  const both = (): unknown => loadConfig({ PORT: 'x', LOG_LEVEL: 'loud' })
  t.throws(both, ConfigError)
  t.throws(both, { message: /PORT[\s\S]*LOG_LEVEL/ }, 'every problem is reported at once')
})

t.test('ALLOWED_HOSTS: names lower-cased, IPv6 addresses in the brackets a Host header gives them', async (t) => {
  t.same(loadConfig({ ALLOWED_HOSTS: ' Chat.Example , 10.0.0.5,[::1], fd00::5 ' }).allowedHosts, ['chat.example', '10.0.0.5', '[::1]', '[fd00::5]'])
  t.equal(loadConfig({}).allowedHosts, undefined)
  t.equal(loadConfig({}).headersTimeoutMs, 10_000)
})

t.test('ALLOWED_ORIGINS: entries in the form browsers send in Origin', async (t) => {
  t.same(loadConfig({ ALLOWED_ORIGINS: 'HTTPS://Chat.Example/, http://localhost:8080,https://chat.example:443' }).allowedOrigins, [
    'https://chat.example',
    'http://localhost:8080',
    'https://chat.example',
  ])
  t.equal(loadConfig({ ALLOWED_ORIGINS: ' , ' }).allowedOrigins, undefined, 'only commas: unset')
})

// Every variable's default and range, as the hand-written loader had them: the schema keeps them.
const RANGES: Array<[string, number | undefined, number, number]> = [
  ['PORT', 3000, 0, 65535],
  ['MAX_MESSAGE_LENGTH', 4096, 1, 1 << 20],
  ['MAX_PAYLOAD_BYTES', 65536, 64, 64 << 20],
  ['JWT_CLOCK_TOLERANCE', 0, 0, 3600],
  ['RATE_LIMIT', 200, 0, 1_000_000],
  ['MAX_CONNECTIONS', 50_000, 1, 10_000_000],
  ['MAX_CONNECTIONS_PER_IP', 1000, 1, 10_000_000],
  ['HEADERS_TIMEOUT_MS', 10_000, 100, 600_000],
  ['MAX_BIND_ATTEMPTS', 10, 1, 1000],
  ['HEARTBEAT_MS', 30_000, 0, 3_600_000],
  ['SLOW_CONSUMER_BYTES', 1 << 20, 1024, 1 << 30],
  ['SHUTDOWN_TIMEOUT_MS', 10_000, 100, 600_000],
  ['PRESENCE_LEASE_MS', 15_000, 300, 600_000],
  ['RETENTION_DAYS', undefined, 0.001, 365_000],
  ['RATE_BURST', undefined, 1, 1_000_000],
]
const keyOf = (name: string): string => name.toLowerCase().replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())

t.test('every number keeps its default and range', async (t) => {
  const defaults = loadConfig({}) as unknown as Record<string, unknown>
  for (const [name, fallback, min, max] of RANGES) {
    const key = keyOf(name)
    t.equal(defaults[key], fallback, `${name} defaults to ${fallback}`)
    t.equal((loadConfig({ [name]: String(min) }) as unknown as Record<string, unknown>)[key], min, `${name}=${min}`)
    t.equal((loadConfig({ [name]: ` ${max} ` }) as unknown as Record<string, unknown>)[key], max, `${name}=${max}, trimmed`)
    const below = Number.isInteger(min) ? min - 1 : min / 2
    t.throws(() => loadConfig({ [name]: String(below) }), { message: new RegExp(`${name}="${below}": expected an? (integer|number) from ${min} to ${max}`) })
    t.throws(() => loadConfig({ [name]: String(max + 1) }), { message: new RegExp(`${name}="${max + 1}"`) })
  }
})

t.test('strings and switches keep their defaults; empty means unset', async (t) => {
  const config = loadConfig({ LOG_LEVEL: '  ', JWT_SECRET: '' })
  t.match(config, { host: '127.0.0.1', logLevel: 'info', redisPrefix: 'duet:', jwtSecret: undefined, allowInsecure: false, trustProxy: false })
  t.match(config.nodeId, /^.+-\d+$/, 'hostname-pid')
  t.equal(loadConfig({ TRUST_PROXY: 'Yes', MULTI_DEVICE: 'off', WS_DEFLATE: '1' }).trustProxy, true)
  t.match(loadConfig({ TRUST_PROXY: 'on', MULTI_DEVICE: 'off', WS_DEFLATE: '1' }), { trustProxy: true, multiDevice: false, wsDeflate: true })
  t.equal(loadConfig({ JWT_PUBLIC_KEY: 'line1\\nline2' }).jwtPublicKey, 'line1\nline2', 'literal \\n read as a newline')
  t.throws(() => loadConfig({ JWT_SECRET: 'a'.repeat(40), JWT_PUBLIC_KEY: 'k' }), { message: /JWT_SECRET and JWT_PUBLIC_KEY: set one of them, not both/ })
})

t.test('an ADMIN_TOKEN with whitespace inside stops the start, without echoing it', async (t) => {
  for (const token of ['two words', 'tab\there']) {
    const err = t.throws(() => loadConfig({ ADMIN_TOKEN: token }), { message: /ADMIN_TOKEN: a bearer token is one word/ }) as unknown as Error
    t.notMatch(err.message, token, 'not the token')
  }
  t.equal(loadConfig({ ADMIN_TOKEN: ' padded ' }).adminToken, 'padded', 'spaces around it are trimmed')
})

t.test('a cluster with a shared store is accepted', async (t) => {
  const config = loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', STORE_URL: 'postgres://u@db:5432/chat', NODE_ID: 'n1' })
  t.match(config, { redisUrl: 'redis://127.0.0.1:6379', nodeId: 'n1', redisPrefix: 'duet:' })
})
