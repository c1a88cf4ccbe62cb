// Generates the OpenAPI document the same way for the writer script and the sync test.
import { build } from '../app.js'

/** openapi/openapi.json at the repository root (this file runs from dist/scripts/). */
export const OPENAPI_PATH = new URL('../../openapi/openapi.json', import.meta.url)

export async function generateOpenApi(): Promise<string> {
  const app = await build({ env: {}, config: { storeUrl: 'memory:' }, logger: false })
  await app.ready()
  const document = `${JSON.stringify(app.swagger(), null, 2)}\n`
  await app.close()
  return document
}
