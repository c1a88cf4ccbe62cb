// Refusing to run exposed without protection: a non-loopback HOST (judged by address, after
// resolving the name) needs JWT auth and ADMIN_TOKEN, or an explicit ALLOW_INSECURE=true that
// is logged loudly. The startup log tells the truth about open mode.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { build } from '../../app.js'
import { checkExposure } from '../../src/config/exposure.js'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { startServer } from '../helpers/server-process.js'
import { TEST_SECRET } from '../helpers/tokens.js'

const SERVER = fileURLToPath(new URL('../../server.js', import.meta.url))
const config = (env: Record<string, string>): Config => loadConfig({ STORE_URL: 'memory:', ...env })

t.test('checkExposure', async (t) => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1', '::ffff:7f00:1', 'localhost']) {
    t.same(await checkExposure(config({ HOST: host })), [], `${host} is loopback`)
  }
  await t.rejects(checkExposure(config({ HOST: '0.0.0.0' })), ConfigError, 'exposed, nothing set')
  await t.rejects(checkExposure(config({ HOST: '0.0.0.0', JWT_SECRET: TEST_SECRET })), /ADMIN_TOKEN/, 'auth but no admin token')
  await t.rejects(checkExposure(config({ HOST: '::', ADMIN_TOKEN: 'x' })), /JWT_SECRET or JWT_PUBLIC_KEY/, 'admin token but no auth')
  t.same(await checkExposure(config({ HOST: '0.0.0.0', JWT_SECRET: TEST_SECRET, ADMIN_TOKEN: 'x' })), [], 'both set')
  t.same(await checkExposure(config({ HOST: '0.0.0.0', ALLOW_INSECURE: 'true' })), ['JWT_SECRET or JWT_PUBLIC_KEY', 'ADMIN_TOKEN'], 'allowed, reasons returned')
  await t.rejects(build({ env: {}, config: { storeUrl: 'memory:', host: '0.0.0.0' }, logger: false }), ConfigError, 'build refuses too')
})

t.test('HOST is judged by the addresses it resolves to, not by its spelling', async (t) => {
  // Starts like a loopback address, is a name: here it does not resolve, so it is not known to be loopback.
  await t.rejects(checkExposure(config({ HOST: '127.attacker.example' })), /Refusing to listen on HOST=127\.attacker\.example/)
  await t.rejects(checkExposure(config({ HOST: '::ffff:10.0.0.1' })), ConfigError, 'IPv4-mapped, not loopback')
  const resolvesTo =
    (...addresses: string[]) =>
    async (): Promise<Array<{ address: string }>> =>
      addresses.map((address) => ({ address }))
  const named = config({ HOST: 'dev.example' })
  t.same(await checkExposure(named, resolvesTo('127.0.0.1', '::1')), [], 'every address loopback')
  await t.rejects(checkExposure(named, resolvesTo('127.0.0.1', '203.0.113.7')), ConfigError, 'one public address is enough to be exposed')
  await t.rejects(checkExposure(named, resolvesTo()), ConfigError, 'no address at all')
  await t.rejects(
    checkExposure(named, async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' })
    }),
    ConfigError,
    'a name that does not resolve',
  )
})

t.test('the server process refuses HOST=127.attacker.example', async (t) => {
  const child = spawn(process.execPath, [SERVER], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.attacker.example', PORT: '0', STORE_URL: 'memory:' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  t.equal(code, 1)
  t.match(stderr, /Refusing to listen on HOST=127\.attacker\.example without JWT_SECRET or JWT_PUBLIC_KEY and ADMIN_TOKEN/)
})

t.test('the server process refuses to start exposed, and names what is missing', async (t) => {
  const child = spawn(process.execPath, [SERVER], {
    env: { PATH: process.env.PATH ?? '', HOST: '0.0.0.0', PORT: '0', STORE_URL: 'memory:' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  t.equal(code, 1)
  t.match(stderr, /Refusing to listen on HOST=0\.0\.0\.0 without JWT_SECRET or JWT_PUBLIC_KEY and ADMIN_TOKEN/)
  t.match(stderr, /ALLOW_INSECURE=true/)
})

t.test('ALLOW_INSECURE=true starts exposed, and says so at error level', async (t) => {
  const server = await startServer(t, { HOST: '0.0.0.0', ALLOW_INSECURE: 'true', STORE_URL: 'memory:' })
  const loud = server.logs.find((l) => /ALLOW_INSECURE=true/.test(String(l.msg)))
  t.match(loud, { level: 50, host: '0.0.0.0', missing: ['JWT_SECRET or JWT_PUBLIC_KEY', 'ADMIN_TOKEN'] })
  server.child.kill('SIGTERM')
  t.match(await server.exited, { code: 0 })
})

t.test('startup log: open mode only when it is open', async (t) => {
  const open = await startServer(t, { STORE_URL: 'memory:' })
  t.ok(open.logs.some((l) => l.level === 40 && /open mode/.test(String(l.msg))), 'open mode warned')
  open.child.kill('SIGTERM')
  await open.exited
  const closed = await startServer(t, { STORE_URL: 'memory:', JWT_SECRET: TEST_SECRET })
  t.notOk(closed.logs.some((l) => /open mode/.test(String(l.msg))), 'no open-mode warning with JWT_SECRET')
  t.ok(closed.logs.some((l) => /JWT auth on/.test(String(l.msg))), 'says auth is on')
  closed.child.kill('SIGTERM')
  await closed.exited
})
