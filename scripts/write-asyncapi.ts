// Writes openapi/asyncapi.json from the frame schemas: `npm run asyncapi`.
// test/asyncapi.test.ts fails when the committed file differs from what this generates.
import { writeFile } from 'node:fs/promises'
import { ASYNCAPI_PATH, generateAsyncApi } from './asyncapi-document.js'

await writeFile(ASYNCAPI_PATH, generateAsyncApi())
process.stdout.write(`wrote ${ASYNCAPI_PATH.pathname}\n`)
