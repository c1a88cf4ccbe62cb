// Refusing to run exposed without protection: a non-loopback HOST needs JWT auth and
// ADMIN_TOKEN, or an explicit ALLOW_INSECURE=true that is logged loudly. The startup log
// tells the truth about open mode.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { build } from '../../app.js'
import { checkExposure, ConfigError, loadConfig, type Config } from '../../src/config.js'
import { startServer } from '../helpers/server-process.js'
import { TEST_SECRET } from '../helpers/tokens.js'

const SERVER = fileURLToPath(new URL('../../server.js', import.meta.url))
const config = (env: Record<string, string>): Config => loadConfig({ STORE_URL: 'memory:', ...env })

t.test('checkExposure', async (t) => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) t.same(checkExposure(config({ HOST: host })), [], `${host} is loopback`)
  t.throws(() => checkExposure(config({ HOST: '0.0.0.0' })), ConfigError, 'exposed, nothing set')
  t.throws(() => checkExposure(config({ HOST: '0.0.0.0', JWT_SECRET: TEST_SECRET })), /ADMIN_TOKEN/, 'auth but no admin token')
  t.throws(() => checkExposure(config({ HOST: '::', ADMIN_TOKEN: 'x' })), /JWT_SECRET or JWT_PUBLIC_KEY/, 'admin token but no auth')
  t.same(checkExposure(config({ HOST: '0.0.0.0', JWT_SECRET: TEST_SECRET, ADMIN_TOKEN: 'x' })), [], 'both set')
  t.same(checkExposure(config({ HOST: '0.0.0.0', ALLOW_INSECURE: 'true' })), ['JWT_SECRET or JWT_PUBLIC_KEY', 'ADMIN_TOKEN'], 'allowed, reasons returned')
  await t.rejects(build({ env: {}, config: { storeUrl: 'memory:', host: '0.0.0.0' }, logger: false }), ConfigError, 'build refuses too')
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
