// The local test database, and a schema of its own for each store a test opens.
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export const PG_URL = process.env.DUET_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

export const freshSchema = (): string => `duet_test_${process.pid}_${randomBytes(6).toString('hex')}`

export async function withPgClient<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  try {
    return await run(client)
  } finally {
    await client.end()
  }
}

export const dropSchema = (schema: string): Promise<unknown> =>
  withPgClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))
