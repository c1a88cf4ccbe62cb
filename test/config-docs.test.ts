// The README's configuration table is generated from the schema (src/config/schema.ts) and
// must not drift from it: run `npm run docs:config` after changing a variable.
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { CONFIG_BLOCK, README_PATH, renderConfigTable } from '../scripts/config-table.js'
import { ConfigSchema, envName } from '../src/config/schema.js'

t.test('README.md shows the configuration table of src/config/schema.ts (run `npm run docs:config`)', async (t) => {
  const readme = await readFile(README_PATH, 'utf8')
  const block = CONFIG_BLOCK.exec(readme)
  t.ok(block, 'has the config block')
  t.equal(block?.[2], renderConfigTable())
})

t.test('every variable is described, with a default or a word on what unset means', async (t) => {
  const names = new Set<string>()
  for (const [key, schema] of Object.entries(ConfigSchema.properties)) {
    const name = envName(key)
    t.notOk(names.has(name), `${name} once`)
    names.add(name)
    t.ok(typeof schema.description === 'string' && schema.description.length > 0, `${name} has a description`)
  }
  t.ok(names.has('ALLOWED_HOSTS') && names.has('HEADERS_TIMEOUT_MS') && names.has('PORT'))
})
