// The README's configuration table, generated from the schema (src/config/schema.ts):
// `npm run docs:config` writes it between the config markers, and test/config-docs.test.ts
// fails when the README differs from what this renders.
import { KindGuard, type TSchema } from '@sinclair/typebox'
import { typeOf } from '../src/config/load.js'
import { ConfigSchema, envName, type VariableNotes } from '../src/config/schema.js'

export const README_PATH = new URL('../../README.md', import.meta.url)
export const CONFIG_BLOCK = /(<!-- config:start -->\n)([\s\S]*?)(\n<!-- config:end -->)/

type Annotated = TSchema & VariableNotes

const code = (value: unknown): string => `\`${String(value)}\``

function defaultOf(schema: Annotated): string {
  if (schema.defaultText !== undefined) return schema.defaultText
  return schema.default === undefined ? 'unset' : code(schema.default)
}

/** `schema` as declared, `type` what it holds when set (inside `unset(…)`). */
function valuesOf(schema: Annotated, type: Annotated): string {
  const text = schema.valuesText ?? type.valuesText
  if (text !== undefined) return text
  if (KindGuard.IsInteger(type)) return `integer, ${type.minimum}–${type.maximum}`
  if (KindGuard.IsNumber(type)) return `number, ${type.minimum}–${type.maximum}`
  if (KindGuard.IsBoolean(type)) return '`true` or `false`'
  if (KindGuard.IsUnion(type)) return type.anyOf.map((s: TSchema) => code(s.const)).join(', ')
  if (KindGuard.IsArray(type)) return 'comma-separated list'
  return 'text'
}

export function renderConfigTable(): string {
  const rows = Object.entries(ConfigSchema.properties).map(([key, schema]: [string, Annotated]) => {
    const cells = [code(envName(key)), defaultOf(schema), valuesOf(schema, typeOf(schema)), schema.description ?? '']
    return `| ${cells.join(' | ')} |`
  })
  return ['| variable | default | values | meaning |', '|---|---|---|---|', ...rows].join('\n')
}

/** `readme` with its configuration table replaced by the rendered one. */
export function withConfigTable(readme: string): string {
  if (!CONFIG_BLOCK.test(readme)) throw new Error('README.md has no <!-- config:start --> … <!-- config:end --> block')
  return readme.replace(CONFIG_BLOCK, (_match, start: string, _table: string, end: string) => `${start}${renderConfigTable()}${end}`)
}
