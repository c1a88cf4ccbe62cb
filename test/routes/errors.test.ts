// HTTP errors as a client sees them: every error of the catalog (plugins/http-errors.ts) with its
// status, body and headers, Fastify's own errors and internal failures in the same body, the
// OpenAPI error responses built from the catalog, and the README's table of it.
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { documentedMessage, HTTP_ERRORS } from '../../plugins/http-errors.js'
import { startApp } from '../helpers/app.js'
import { rawUpgrade } from '../helpers/raw-ws.js'
import { signToken, TEST_SECRET } from '../helpers/tokens.js'

const ADMIN_TOKEN = 'admin-secret-token'
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }

/** Status, headers named, and the exact body of a response. */
async function answer(res: Response, headerNames: string[] = []): Promise<[number, Record<string, string | null>, unknown]> {
  return [res.status, Object.fromEntries(headerNames.map((name) => [name, res.headers.get(name)])), await res.json()]
}

t.test('the admin and user guards', async (t) => {
  const { url } = await startApp(t, { adminToken: ADMIN_TOKEN, jwtSecret: TEST_SECRET })
  const unauthorized = { statusCode: 401, error: 'Unauthorized' }
  for (const path of ['/admin/online', '/metrics']) {
    t.same(await answer(await fetch(url + path), ['www-authenticate']), [
      401,
      { 'www-authenticate': 'Bearer realm="duet admin"' },
      { ...unauthorized, message: 'missing or invalid admin token: send Authorization: Bearer <ADMIN_TOKEN>', code: 'DUET_ADMIN_TOKEN_REQUIRED' },
    ])
  }
  const conversations = `${url}/users/alice/conversations`
  t.same(await answer(await fetch(conversations), ['www-authenticate']), [
    401,
    { 'www-authenticate': 'Bearer error="invalid_request"' },
    { ...unauthorized, message: 'send Authorization: Bearer <JWT>', code: 'DUET_USER_TOKEN_MISSING' },
  ])
  t.same(await answer(await fetch(conversations, { headers: { authorization: 'Bearer garbage' } }), ['www-authenticate']), [
    401,
    { 'www-authenticate': 'Bearer error="invalid_token"' },
    { ...unauthorized, message: 'invalid token: invalid', code: 'DUET_USER_TOKEN_INVALID' },
  ])
  const bobs = { authorization: `Bearer ${await signToken({ sub: 'bob' })}` }
  t.same(await answer(await fetch(conversations, { headers: bobs })), [
    403,
    {},
    { statusCode: 403, error: 'Forbidden', message: 'the token is for another uid: not your data', code: 'DUET_NOT_YOUR_DATA' },
  ])
})

t.test('admin routes without ADMIN_TOKEN refuse a relayed request', async (t) => {
  const { url } = await startApp(t)
  t.same(await answer(await fetch(`${url}/admin/sessions`, { headers: { 'x-forwarded-for': '203.0.113.7' } }), ['www-authenticate']), [
    401,
    { 'www-authenticate': 'Bearer realm="duet admin"' },
    {
      statusCode: 401,
      error: 'Unauthorized',
      message: 'admin routes answer direct loopback clients only while ADMIN_TOKEN is unset',
      code: 'DUET_ADMIN_LOOPBACK_ONLY',
    },
  ])
})

t.test('admin routes: no such session, presence unavailable', async (t) => {
  const { app, url } = await startApp(t, { adminToken: ADMIN_TOKEN })
  t.same(await answer(await fetch(`${url}/admin/sessions/nope`, { method: 'DELETE', headers: admin })), [
    404,
    {},
    { statusCode: 404, error: 'Not Found', message: 'no such session', code: 'DUET_SESSION_NOT_FOUND' },
  ])
  // A presence that cannot answer, as in a Redis outage.
  const { presence } = app.cluster
  const sessions = presence.sessions.bind(presence)
  presence.sessions = () => Promise.reject(new Error('connection lost'))
  t.teardown(() => (presence.sessions = sessions))
  const unavailable = { statusCode: 503, error: 'Service Unavailable', message: 'cluster presence unavailable: connection lost', code: 'DUET_PRESENCE_UNAVAILABLE' }
  t.same(await answer(await fetch(`${url}/admin/online`, { headers: admin })), [503, {}, unavailable])
  t.same(await answer(await fetch(`${url}/admin/sessions/nope`, { method: 'DELETE', headers: admin })), [503, {}, unavailable])
})

t.test('refused WebSocket upgrades', async (t) => {
  const origin = await startApp(t, { allowedOrigins: ['https://chat.example'] })
  const foreign = await rawUpgrade(origin.wsUrl, { origin: 'https://evil.example' })
  t.same([foreign.status, JSON.parse(foreign.body ?? '')], [
    403,
    { statusCode: 403, error: 'Forbidden', message: 'origin not allowed', code: 'DUET_ORIGIN_NOT_ALLOWED' },
  ])

  const cases: Array<[string, { maxConnections?: number; maxConnectionsPerIp?: number }, unknown]> = [
    [
      'MAX_CONNECTIONS_PER_IP',
      { maxConnectionsPerIp: 1 },
      { statusCode: 429, error: 'Too Many Requests', message: 'too many connections from this address', code: 'DUET_TOO_MANY_CONNECTIONS_FROM_ADDRESS' },
    ],
    [
      'MAX_CONNECTIONS',
      { maxConnections: 1 },
      { statusCode: 503, error: 'Service Unavailable', message: 'too many connections: try again later', code: 'DUET_TOO_MANY_CONNECTIONS' },
    ],
  ]
  for (const [limit, config, body] of cases) {
    const { wsUrl } = await startApp(t, config)
    const first = await rawUpgrade(wsUrl)
    t.equal(first.status, 101)
    const refused = await rawUpgrade(wsUrl)
    t.same([refused.status, refused.headers['retry-after'], JSON.parse(refused.body ?? '')], [(body as { statusCode: number }).statusCode, '5', body], limit)
    first.socket?.destroy()
  }
})

t.test("Fastify's own errors, unknown routes and internal failures have the same body", async (t) => {
  const { app, url } = await startApp(t, { adminToken: ADMIN_TOKEN })
  t.same(await answer(await fetch(`${url}/users/alice/conversations/bob/messages?limit=0`)), [
    400,
    {},
    { statusCode: 400, error: 'Bad Request', message: 'querystring/limit must be >= 1', code: 'FST_ERR_VALIDATION' },
  ])
  t.same(await answer(await fetch(`${url}/admin/sessions/${'x'.repeat(129)}`, { method: 'DELETE', headers: admin })), [
    400,
    {},
    { statusCode: 400, error: 'Bad Request', message: 'params/id must NOT have more than 128 characters', code: 'FST_ERR_VALIDATION' },
  ])
  const badJson = await fetch(`${url}/admin/sessions/x`, { method: 'DELETE', headers: { ...admin, 'content-type': 'application/json' }, body: '{' })
  t.match(await answer(badJson), [400, {}, { statusCode: 400, error: 'Bad Request', message: String, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }])
  for (const [method, path] of [
    ['GET', '/nope'],
    ['POST', '/healthz'],
    ['GET', '/docs/nope'],
  ] as const) {
    t.same(await answer(await fetch(url + path, { method })), [
      404,
      {},
      { statusCode: 404, error: 'Not Found', message: `Route ${method}:${path} not found`, code: 'DUET_ROUTE_NOT_FOUND' },
    ])
  }
  // The router's own refusals, before any route: the same body, with the status's own text.
  const tooLong = await fetch(`${url}/users/${'a'.repeat(1100)}/conversations`)
  t.match(await answer(tooLong, ['content-type']), [
    414,
    { 'content-type': 'application/json; charset=utf-8' },
    { statusCode: 414, error: 'URI Too Long', message: /exceeding the max param length/, code: 'FST_ERR_MAX_PARAM_LENGTH' },
  ])
  t.same(await answer(await fetch(`${url}/users/a%ZZ/conversations`), ['content-type']), [
    400,
    { 'content-type': 'application/json; charset=utf-8' },
    { statusCode: 400, error: 'Bad Request', message: "'/users/a%ZZ/conversations' is not a valid url component", code: 'FST_ERR_BAD_URL' },
  ])
  // A driver's error code says nothing a client can use: the body has none.
  const history = app.store.history.bind(app.store)
  app.store.history = () => Promise.reject(Object.assign(new Error('connection terminated'), { code: 'ECONNRESET' }))
  t.teardown(() => (app.store.history = history))
  t.same(await answer(await fetch(`${url}/users/alice/conversations/bob/messages`)), [
    500,
    {},
    { statusCode: 500, error: 'Internal Server Error', message: 'connection terminated' },
  ])
})

t.test('OpenAPI: every error response is ErrorResponse, described by declared codes', async (t) => {
  const { url } = await startApp(t)
  type Response = { description: string; content?: Record<string, { schema: { $ref?: string } }> }
  const doc = (await (await fetch(`${url}/openapi.json`)).json()) as { paths: Record<string, Record<string, { responses: Record<string, Response> }>> }
  const declared = new Set(HTTP_ERRORS.map((e) => e.code))
  let errors = 0
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, { responses }] of Object.entries(operations)) {
      for (const [status, response] of Object.entries(responses)) {
        if (Number(status) < 400 || (path === '/readyz' && status === '503')) continue // /readyz answers its checks
        errors++
        t.equal(response.content?.['application/json']?.schema.$ref, '#/components/schemas/ErrorResponse', `${method} ${path} ${status}`)
        const codes = [...response.description.matchAll(/`((?:DUET|FST)_[A-Z_]+)`/g)].map((m) => m[1]!)
        t.ok(codes.length > 0 && codes.every((c) => declared.has(c)), `${method} ${path} ${status} names declared codes: ${codes.join(', ')}`)
      }
    }
  }
  t.ok(errors > 0, 'error responses were checked')
})

t.test('README shows the catalog of plugins/http-errors.ts', async (t) => {
  const rows = HTTP_ERRORS.map((e) => {
    const headers = Object.entries(e.headers).map(([name, value]) => `\`${name}: ${value}\``)
    return `| \`${e.code}\` | ${e.statusCode} | \`${documentedMessage(e)}\` | ${headers.join(', ')} |`
  })
  const rendered = ['| code | status | message | headers |', '|---|---|---|---|', ...rows].join('\n')
  const text = await readFile(new URL('../../../README.md', import.meta.url), 'utf8')
  const block = /<!-- http-errors:start -->\n([\s\S]*?)\n<!-- http-errors:end -->/.exec(text)
  t.ok(block, 'has the http-errors block')
  t.equal(block?.[1], rendered)
})
