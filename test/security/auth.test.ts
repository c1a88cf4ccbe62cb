// Attacks on authentication: forged, unsigned, expired, not-yet-valid and wrong-sub tokens
// on bind (406, connection stays unbound, the victim's session is untouched), bind
// attempt limits, and the user REST routes (401/403, admin token reads anything).
import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { SignJWT, type JWTPayload } from 'jose'
import { build } from '../../app.js'
import { loadConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'
import { keyPair, signToken, TEST_SECRET, unsignedToken } from '../helpers/tokens.js'

const ADMIN = 'admin-token-for-tests'

/** Binds on a fresh connection; returns the reply and whether the connection is still unbound. */
async function tryBind(
  wsUrl: string,
  frame: Record<string, unknown>,
): Promise<{ code: number; msg: string; uid: string; unbound: boolean }> {
  const c = await TestClient.connect(wsUrl)
  const reply = await c.request({ type: 'bind', ...frame })
  const after = await c.request({ type: 'send', touid: 'someone', msg: 'x' })
  await c.close()
  return { code: reply.code, msg: reply.msg, uid: reply.uid, unbound: after.code === 402 }
}

t.test('HS256: every bad token gets 406 and leaves the connection unbound', async (t) => {
  const { wsUrl } = await startApp(t, { jwtSecret: TEST_SECRET })
  const other = new TextEncoder().encode('another-secret-that-is-also-32-characters')
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['no token', { uid: 'alice' }, /token required/],
    ['empty token', { uid: 'alice', token: '' }, /token required/],
    ['garbage', { uid: 'alice', token: 'not.a.jwt' }, /invalid/],
    ['forged: other secret', { uid: 'alice', token: await signToken({ sub: 'alice' }, other) }, /invalid/],
    ['unsigned: alg none', { uid: 'alice', token: unsignedToken('alice') }, /invalid/],
    ['expired', { uid: 'alice', token: await signToken({ sub: 'alice', expiresIn: -60 }) }, /expired/],
    ['nbf in the future', { uid: 'alice', token: await signToken({ sub: 'alice', notBefore: 3600 }) }, /nbf/],
    ['no sub', { uid: 'alice', token: await signToken({}) }, /invalid/],
    ['wrong sub', { uid: 'alice', token: await signToken({ sub: 'mallory' }) }, /another uid/],
  ]
  for (const [name, frame, msg] of cases) {
    const result = await tryBind(wsUrl, frame)
    t.equal(result.code, 406, `${name}: 406`)
    t.equal(result.uid, '', `${name}: uid "" (not bound)`)
    t.match(result.msg, msg, `${name}: says why`)
    t.ok(result.unbound, `${name}: still unbound (402 after)`)
  }
  const ok = await tryBind(wsUrl, { uid: 'alice', token: await signToken({ sub: 'alice' }) })
  t.equal(ok.code, 201, 'a valid token binds')
  t.notOk(ok.unbound)
})

t.test('exp and nbf: checked when present, with no clock tolerance unless JWT_CLOCK_TOLERANCE', async (t) => {
  const strict = await startApp(t, { jwtSecret: TEST_SECRET })
  const bind = async (wsUrl: string, claims: Parameters<typeof signToken>[0]): Promise<number> =>
    (await tryBind(wsUrl, { uid: 'u', token: await signToken({ sub: 'u', ...claims }) })).code
  t.equal(await bind(strict.wsUrl, { expiresIn: -2 }), 406, 'expired 2 s ago')
  t.equal(await bind(strict.wsUrl, { notBefore: 3 }), 406, 'valid in 3 s')
  t.equal(await bind(strict.wsUrl, { expiresIn: null }), 201, 'a token without exp binds')
  const tolerant = await startApp(t, { jwtSecret: TEST_SECRET, jwtClockTolerance: 30 })
  t.equal(await bind(tolerant.wsUrl, { expiresIn: -2 }), 201, 'expired 2 s ago, within 30 s of skew')
  t.equal(await bind(tolerant.wsUrl, { notBefore: 3 }), 201, 'valid in 3 s, within 30 s of skew')
  t.equal(await bind(tolerant.wsUrl, { expiresIn: -60 }), 406, 'expired beyond the skew')
  const requireExp = await startApp(t, { jwtSecret: TEST_SECRET, jwtRequireExp: true })
  const noExp = await tryBind(requireExp.wsUrl, { uid: 'u', token: await signToken({ sub: 'u', expiresIn: null }) })
  t.equal(noExp.code, 406, 'JWT_REQUIRE_EXP refuses a token without exp')
  t.match(noExp.msg, /invalid/)
  t.equal(await bind(requireExp.wsUrl, {}), 201, 'and takes one with exp')
  t.match(loadConfig({ JWT_CLOCK_TOLERANCE: '30', JWT_REQUIRE_EXP: 'true' }), { jwtClockTolerance: 30, jwtRequireExp: true })
  t.match(loadConfig({}), { jwtClockTolerance: 0, jwtRequireExp: false })
})

t.test("a forged bind for a live uid does not kick the victim's session", async (t) => {
  const { wsUrl } = await startApp(t, { jwtSecret: TEST_SECRET })
  const alice = await TestClient.bound(wsUrl, 'alice', { token: await signToken({ sub: 'alice' }) })
  const bob = await TestClient.bound(wsUrl, 'bob', { token: await signToken({ sub: 'bob' }) })
  const mallory = await TestClient.connect(wsUrl)
  t.match(await mallory.request({ type: 'bind', uid: 'alice', token: await signToken({ sub: 'mallory' }) }), { code: 406 })
  t.match(await mallory.request({ type: 'bind', uid: 'alice' }), { code: 406 })
  t.match(await bob.request({ type: 'send', touid: 'alice', msg: 'still yours' }), { code: 204 })
  t.match(await alice.nextCode(200), { msg: 'still yours' }, 'alice still receives')
  t.same(alice.frames, [], 'alice got no 409')
  await Promise.all([alice.close(), bob.close(), mallory.close()])
})

t.test('JWT_ISSUER and JWT_AUDIENCE are enforced when set', async (t) => {
  const { wsUrl } = await startApp(t, { jwtSecret: TEST_SECRET, jwtIssuer: 'duet-idp', jwtAudience: 'duet' })
  const bind = async (claims: Parameters<typeof signToken>[0]): Promise<number> =>
    (await tryBind(wsUrl, { uid: 'u', token: await signToken({ sub: 'u', ...claims }) })).code
  t.equal(await bind({}), 406, 'no iss/aud')
  t.equal(await bind({ iss: 'evil', aud: 'duet' }), 406, 'wrong iss')
  t.equal(await bind({ iss: 'duet-idp', aud: 'other' }), 406, 'wrong aud')
  t.equal(await bind({ iss: 'duet-idp', aud: 'duet' }), 201, 'right iss and aud')
})

for (const kind of ['rsa', 'ec'] as const) {
  t.test(`${kind === 'rsa' ? 'RS256' : 'ES256'} with JWT_PUBLIC_KEY (literal \\n in the env)`, async (t) => {
    const { privateKey, publicPem } = keyPair(kind)
    const alg = kind === 'rsa' ? 'RS256' : 'ES256'
    const fromEnv = loadConfig({ JWT_PUBLIC_KEY: publicPem.trim().replaceAll('\n', '\\n') })
    t.equal(fromEnv.jwtPublicKey, publicPem.trim(), 'literal \\n read as newlines')
    const { wsUrl } = await startApp(t, { jwtPublicKey: fromEnv.jwtPublicKey })
    t.equal((await tryBind(wsUrl, { uid: 'k', token: await signToken({ sub: 'k' }, privateKey, alg) })).code, 201)
    const stranger = keyPair(kind).privateKey
    t.equal((await tryBind(wsUrl, { uid: 'k', token: await signToken({ sub: 'k' }, stranger, alg) })).code, 406, 'other key')
    // Alg confusion: an HS256 token "signed" with the public key as the HMAC secret.
    const confused = await signToken({ sub: 'k' }, new TextEncoder().encode(publicPem), 'HS256')
    t.equal((await tryBind(wsUrl, { uid: 'k', token: confused })).code, 406, 'HS256 with the public key as secret')
  })
}

t.test('bad JWT configuration stops the start', async (t) => {
  t.throws(() => loadConfig({ JWT_CLOCK_TOLERANCE: '-1' }), /JWT_CLOCK_TOLERANCE/)
  t.throws(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_PUBLIC_KEY: 'x' }), /one of them/)
  await t.rejects(build({ env: {}, config: { storeUrl: 'memory:', jwtPublicKey: 'not a pem' }, logger: false }), /JWT_PUBLIC_KEY/)
  // jose verifies nothing with an RSA key under 2048 bits: such a key must stop the start, not every bind.
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  await t.rejects(build({ env: {}, config: { storeUrl: 'memory:', jwtPublicKey: small }, logger: false }), {
    message: 'JWT_PUBLIC_KEY: an RSA key needs 2048 bits or more, this one has 1024',
  })
})

t.test('bind attempts per connection are limited: over MAX_BIND_ATTEMPTS closes 1008', async (t) => {
  const { wsUrl } = await startApp(t, { jwtSecret: TEST_SECRET, maxBindAttempts: 3 })
  const c = await TestClient.connect(wsUrl)
  for (let i = 0; i < 3; i++) t.match(await c.request({ type: 'bind', uid: 'v', token: `guess${i}` }), { code: 406 })
  c.send({ type: 'bind', uid: 'v', token: 'guess3' })
  t.equal((await c.closed).code, 1008, 'the 4th bind closes the connection')
  t.same(c.frames, [], 'no reply to the bind over the limit')
})

t.test('malformed binds count as bind attempts too', async (t) => {
  const { wsUrl } = await startApp(t, { maxBindAttempts: 3 })
  const c = await TestClient.connect(wsUrl)
  for (let i = 0; i < 3; i++) t.match(await c.request({ type: 'bind', uid: '' }), { code: 400 })
  c.send({ type: 'bind', uid: '' })
  t.equal((await c.closed).code, 1008)
})

async function restApp(config: Partial<Config>) {
  const app = await build({ env: {}, config: { storeUrl: 'memory:', ...config }, logger: false })
  await app.ready()
  await app.store.append({ from: 'bob', to: 'alice', msg: 'hi alice', read: false, delivered: false })
  return app
}

t.test('user REST routes with auth on: 401 without a valid token, 403 for another uid, admin reads all', async (t) => {
  const app = await restApp({ jwtSecret: TEST_SECRET, adminToken: ADMIN })
  t.teardown(() => app.close())
  const get = async (url: string, token?: string) =>
    app.inject({ method: 'GET', url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
  for (const url of ['/users/alice/conversations', '/users/alice/conversations/bob/messages']) {
    const none = await get(url)
    t.equal(none.statusCode, 401, `${url}: no token`)
    t.match(none.headers['www-authenticate'], /^Bearer/)
    t.equal((await get(url, 'garbage')).statusCode, 401, `${url}: garbage token`)
    t.equal((await get(url, await signToken({ sub: 'alice', expiresIn: -60 }))).statusCode, 401, `${url}: expired`)
    t.equal((await get(url, unsignedToken('alice'))).statusCode, 401, `${url}: alg none`)
    t.equal((await get(url, await signToken({ sub: 'bob' }))).statusCode, 403, `${url}: bob reading alice`)
    const numeric = await new SignJWT({ sub: 5 } as unknown as JWTPayload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(TEST_SECRET))
    t.equal((await get(url, numeric)).statusCode, 401, `${url}: a sub that is not a string is an invalid token`)
    const own = await get(url, await signToken({ sub: 'alice' }))
    t.equal(own.statusCode, 200, `${url}: alice reading alice`)
    t.match(own.body, /hi alice/)
    t.equal((await get(url, ADMIN)).statusCode, 200, `${url}: admin token`)
    t.equal((await get(url, 'not-the-admin-token')).statusCode, 401, `${url}: wrong admin token`)
  }
})

t.test('auth on without ADMIN_TOKEN: loopback is not admin for user data', async (t) => {
  const app = await restApp({ jwtSecret: TEST_SECRET })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/users/alice/conversations', remoteAddress: '127.0.0.1' })
  t.equal(res.statusCode, 401)
})

t.test('open mode: user routes need no token', async (t) => {
  const app = await restApp({})
  t.teardown(() => app.close())
  t.equal((await app.inject({ method: 'GET', url: '/users/alice/conversations' })).statusCode, 200)
})
