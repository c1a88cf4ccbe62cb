import { readFile } from 'node:fs/promises'
import { Parser } from '@asyncapi/parser'
import t from 'tap'
import { ASYNCAPI_PATH, buildAsyncApi, generateAsyncApi } from '../scripts/asyncapi-document.js'
import { CODE_TABLE } from '../src/protocol/codes.js'
import { ClientFrameSchemas } from '../src/protocol/schemas.js'

t.test('openapi/asyncapi.json matches what the code generates (run `npm run asyncapi`)', async (t) => {
  t.equal(await readFile(ASYNCAPI_PATH, 'utf8'), generateAsyncApi())
})

t.test('the document is valid AsyncAPI 3 with no errors or warnings', async (t) => {
  const { document, diagnostics } = await new Parser().parse(generateAsyncApi())
  t.same(
    diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`),
    [],
  )
  t.ok(document, 'parsed')
  t.equal(document!.version(), '3.0.0')
  const channel = document!.channels().get('chat')!
  t.equal(channel.address(), '/ws')
  const names = channel.messages().all().map((m) => m.id())
  for (const type of Object.keys(ClientFrameSchemas)) {
    t.ok(names.includes(type), `client frame ${type} is described`)
    // Server messages share the namespace: none may take a client frame's name and schema.
    t.match(channel.messages().get(type)?.title(), `${type} (client → server)`, `${type} is the client's frame`)
  }
  for (const name of ['message', 'bound', 'joined', 'exited', 'sent', 'error']) t.ok(names.includes(name), `server frame ${name}`)
  const receive = document!.operations().filterByReceive().map((o) => o.id())
  t.same(receive.sort(), Object.keys(ClientFrameSchemas).sort(), 'the server receives every client frame')
})

t.test('every code of the code table is in the document', async (t) => {
  const doc = buildAsyncApi() as { info: { description: string }; components: { messages: { error: unknown } } }
  const errors = JSON.stringify(doc.components.messages.error)
  for (const c of CODE_TABLE) {
    t.match(doc.info.description, `| ${c.code} |`, `code ${c.code} in the table`)
    if (c.error) t.match(errors, String(c.code), `error code ${c.code} in the error message`)
  }
})
