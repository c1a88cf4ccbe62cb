// The README's typed-client example imports the client by a path: that path must exist in a
// built checkout and export what the example uses.
import { readFile } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

t.test('the typed-client example imports a module that is there', async (t) => {
  const readme = await readFile(`${ROOT}README.md`, 'utf8')
  const section = readme.slice(readme.indexOf('### The typed client'))
  const path = /import \{ DuetClient, DuetError \} from '(\.\/[^']+)'/.exec(section)?.[1]
  t.ok(path, 'the example imports DuetClient by a relative path')
  const client = (await import(pathToFileURL(`${ROOT}${path}`).href)) as Record<string, unknown>
  t.type(client.DuetClient, 'function')
  t.type(client.DuetError, 'function')
})
