// Nodes a and b (or more) in this process, on the machine's Redis (a key prefix of their own) and
// PostgreSQL (a schema of their own), both dropped when the test file ends.
import t from 'tap'
import type { Config } from '../../src/config/schema.js'
import { startApp } from '../helpers/app.js'
import { dropSchema, freshSchema, PG_URL } from '../helpers/postgres.js'
import { deleteKeys, freshPrefix, REDIS_URL } from './redis-helpers.js'

type Teardown = Parameters<typeof startApp>[0]

/** A way to start nodes a and b (or the nodes named) with `config` on top; each set is closed when its test ends. */
export function twoNodesOnRedis(
  config: Partial<Config> = {},
  nodeIds: readonly string[] = ['a', 'b'],
): (t: Teardown) => Promise<Awaited<ReturnType<typeof startApp>>[]> {
  const prefix = freshPrefix()
  const schema = freshSchema()
  t.teardown(async () => {
    await deleteKeys(prefix)
    await dropSchema(schema)
  })
  return (test) =>
    Promise.all(nodeIds.map((nodeId) => startApp(test, { storeUrl: `${PG_URL}?schema=${schema}`, redisUrl: REDIS_URL, redisPrefix: prefix, nodeId, ...config })))
}
