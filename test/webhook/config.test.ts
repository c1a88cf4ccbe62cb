// WEBHOOK_URL needs a WEBHOOK_SECRET of 32 characters or more: without one, or with a shorter
// one, the server refuses to start, naming WEBHOOK_SECRET (never the secret itself); with 32
// it starts and sends. The check is loadConfig's, on the environment: build({ env }).
import t from 'tap'
import { build } from '../../app.js'
import { Receiver } from './receiver.js'
import { serverSend, settled, TOKEN } from './common.js'
import { startApp } from '../helpers/app.js'

const base = { HOST: '127.0.0.1', PORT: '0', STORE_URL: 'memory:', ADMIN_TOKEN: TOKEN }

t.test('WEBHOOK_URL without WEBHOOK_SECRET refuses to start', async (t) => {
  await t.rejects(build({ env: { ...base, WEBHOOK_URL: 'http://127.0.0.1:9/hook' }, logger: false }), {
    name: 'ConfigError',
    message: /WEBHOOK_SECRET/,
  })
  await t.rejects(build({ env: { ...base, WEBHOOK_URL: 'http://127.0.0.1:9/hook', WEBHOOK_SECRET: '' }, logger: false }), { message: /WEBHOOK_SECRET/ }, 'an empty one')
})

t.test('a WEBHOOK_URL the HTTP client could not parse refuses to start, naming WEBHOOK_URL', async (t) => {
  const secret = 's'.repeat(32)
  for (const url of ['http://exa mple.com/x', 'http://host:99999/', 'http://[::1/', 'ftp://example.com/', 'http://']) {
    await t.rejects(build({ env: { ...base, WEBHOOK_URL: url, WEBHOOK_SECRET: secret }, logger: false }), {
      name: 'ConfigError',
      message: /WEBHOOK_URL: expected an http:\/\/ or https:\/\/ URL/,
    }, url)
  }
})

t.test('a 31-character WEBHOOK_SECRET refuses to start, without echoing it', async (t) => {
  const secret = 'k'.repeat(30) + 'Q'
  const err = await build({ env: { ...base, WEBHOOK_URL: 'http://127.0.0.1:9/hook', WEBHOOK_SECRET: secret }, logger: false }).then(
    () => undefined,
    (e: unknown) => e as Error,
  )
  t.ok(err instanceof Error, 'rejected')
  t.match(err?.message, /WEBHOOK_SECRET/)
  t.match(err?.message, /31/, 'says how long it is')
  t.notMatch(err?.message, secret, 'not the secret')
  // Characters, not UTF-16 units: 31 emoji are 62 units and still too short.
  await t.rejects(build({ env: { ...base, WEBHOOK_URL: 'http://127.0.0.1:9/hook', WEBHOOK_SECRET: '😀'.repeat(31) }, logger: false }), {
    message: /WEBHOOK_SECRET/,
  })
})

t.test('a 32-character WEBHOOK_SECRET starts, and the webhook is on', async (t) => {
  const receiver = await Receiver.start(t)
  const app = await build({ env: { ...base, WEBHOOK_URL: receiver.url(), WEBHOOK_SECRET: 's'.repeat(32) }, logger: false })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.not(app.webhook, null, 'a dispatcher')
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const url = `http://127.0.0.1:${address.port}`
  const sent = await serverSend(url, { from: 'system', to: 'bob', msg: 'configured from the environment' })
  t.equal(sent.status, 201)
  t.equal((await receiver.nth(1)).headers['duet-event-id'] !== undefined, true, 'the event is sent')
  await settled(url, 0)
})

t.test('a WEBHOOK_SECRET without WEBHOOK_URL is no error, and the webhook is off', async (t) => {
  const app = await build({ env: { ...base, WEBHOOK_SECRET: 'short' }, logger: false })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.webhook, null)
})

t.test('startApp with webhook settings (the config path the other tests use)', async (t) => {
  const receiver = await Receiver.start(t)
  const { app } = await startApp(t, { adminToken: TOKEN, webhookUrl: receiver.url(), webhookSecret: 'x'.repeat(32) })
  t.not(app.webhook, null)
})
