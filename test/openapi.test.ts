import { readFile } from 'node:fs/promises'
import t from 'tap'
import { generateOpenApi, OPENAPI_PATH } from '../scripts/openapi-document.js'
import { startApp } from './helpers/app.js'

t.test('openapi/openapi.json matches what the code generates (run `npm run openapi`)', async (t) => {
  const committed = await readFile(OPENAPI_PATH, 'utf8')
  t.equal(committed, await generateOpenApi())
})

t.test('GET /openapi.json serves the document with every route', async (t) => {
  const { url } = await startApp(t)
  const res = await fetch(url + '/openapi.json')
  t.equal(res.status, 200)
  const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> }
  t.match(doc.openapi, /^3\./)
  for (const path of [
    '/admin/online',
    '/admin/sessions',
    '/admin/sessions/{id}',
    '/healthz',
    '/readyz',
    '/users/{uid}/conversations',
    '/users/{uid}/conversations/{peer}/messages',
    '/admin/messages',
    '/admin/users/{uid}',
    '/admin/users/{uid}/export',
    '/users/{uid}/export',
  ]) {
    t.ok(doc.paths[path], `documents ${path}`)
  }
  const docs = await fetch(url + '/docs')
  t.equal(docs.status, 200, 'Swagger UI is served at /docs')
})
