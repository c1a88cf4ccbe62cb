// Writes openapi/openapi.json from the route schemas: `npm run openapi`.
// test/openapi.test.ts fails when the committed file differs from what this generates.
import { writeFile } from 'node:fs/promises'
import { generateOpenApi, OPENAPI_PATH } from './openapi-document.js'

const document = await generateOpenApi()
await writeFile(OPENAPI_PATH, document)
process.stdout.write(`wrote ${OPENAPI_PATH.pathname}\n`)
