// The code table is one table in the code; the docs render it and must not drift.
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { CODE_TABLE } from '../../src/protocol/codes.js'

const ROOT = new URL('../../../', import.meta.url)

function rendered(): string {
  const rows = CODE_TABLE.map((c) => `| ${c.code} | ${c.type} | ${c.error} | ${c.meaning} |`)
  return ['| code | type | error | meaning |', '|---|---|---|---|', ...rows].join('\n')
}

for (const doc of ['docs/PROTOCOL.md', 'README.md']) {
  t.test(`${doc} shows the code table of src/protocol/codes.ts`, async (t) => {
    const text = await readFile(new URL(doc, ROOT), 'utf8')
    const block = /<!-- codes:start -->\n([\s\S]*?)\n<!-- codes:end -->/.exec(text)
    t.ok(block, 'has the codes block')
    t.equal(block?.[1], rendered())
  })
}

t.test('codes are unique and errors are exactly the codes >= 400', async (t) => {
  const codes = CODE_TABLE.map((c) => c.code)
  t.equal(new Set(codes).size, codes.length)
  for (const c of CODE_TABLE) t.equal(c.error, c.code >= 400, `${c.code}`)
})
