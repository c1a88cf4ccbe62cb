// Writes the README's configuration table from the schema: `npm run docs:config`.
import { readFile, writeFile } from 'node:fs/promises'
import { README_PATH, withConfigTable } from './config-table.js'

await writeFile(README_PATH, withConfigTable(await readFile(README_PATH, 'utf8')))
process.stdout.write(`wrote the configuration table of ${README_PATH.pathname}\n`)
