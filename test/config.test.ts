// Configuration is validated at start: a bad value is refused with a message naming it.
import t from 'tap'
import { ConfigError, DEFAULT_STORE_URL, loadConfig } from '../src/config.js'

t.test('defaults', async (t) => {
  const config = loadConfig({})
  t.match(config, {
    port: 3000,
    host: '127.0.0.1',
    maxMessageLength: 4096,
    maxPayloadBytes: 65536,
    wsDeflate: false,
    multiDevice: false,
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
    [{ STORE_URL: 'mysql://db/chat' }, /STORE_URL: expected sqlite:<path>/],
    [{ STORE_URL: 'sqlite:' }, /STORE_URL/],
    [{ REDIS_URL: 'redis://127.0.0.1:6379' }, /REDIS_URL is set \(cluster mode\) but STORE_URL is not postgres/],
    [{ REDIS_URL: 'not-a-url', STORE_URL: 'postgres://db/x' }, /REDIS_URL: expected redis:\/\//],
    [{ ALLOWED_HOSTS: 'chat.example,http://chat.example' }, /ALLOWED_HOSTS: "http:\/\/chat\.example" is not a host name or address/],
    [{ ALLOWED_HOSTS: 'chat.example:8080' }, /ALLOWED_HOSTS: "chat\.example:8080"[^\n]*without scheme, port or wildcard/],
    [{ ALLOWED_HOSTS: '*.example' }, /ALLOWED_HOSTS: "\*\.example"/],
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

t.test('a cluster with a shared store is accepted', async (t) => {
  const config = loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', STORE_URL: 'postgres://u@db:5432/chat', NODE_ID: 'n1' })
  t.match(config, { redisUrl: 'redis://127.0.0.1:6379', nodeId: 'n1', redisPrefix: 'duet:' })
})
