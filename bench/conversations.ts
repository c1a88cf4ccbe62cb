// The conversation list of issue 15: `npm run bench:conversations` (builds, then runs
// dist/bench/conversations.js). A user wrote one 4 KB message to each of PARTNERS uids.
//   list:   per store, over HTTP: the first page (default limit), the largest page (200), a walk
//           of every page (what the unpaginated route used to build in one answer), and the
//           RSS around ten parallel first-page requests, three times.
//   writes: what keeping the list costs an append, the table written or not, in the same run:
//           SQLite store CPU per message; PostgreSQL msg/s (its trigger disabled or not). With
//           few pairs (a batch writes each conversation once) and with a new pair per message.
// In one process, nothing pinned: compare the figures of one run with each other.
// Options (env or --key=value): SCENARIOS (list,writes)  PARTNERS (5000)  WRITES (100000)
//   ROUNDS (3)  PG_URL (postgres://postgres@127.0.0.1:5432/test; "" skips PostgreSQL)
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { build } from '../app.js'
import type { MessageStore, NewMessage } from '../src/store/message-store.js'
import { PostgresMessageStore } from '../src/store/postgres-store.js'
import { SqliteMessageStore } from '../src/store/sqlite-store.js'

const args = new Map(
  process.argv.slice(2).map((a) => {
    const m = /^(?:--)?([A-Za-z][\w-]*)=(.*)$/.exec(a)
    if (m === null) throw new Error(`bad argument ${a}: use KEY=VALUE`)
    return [m[1]!.toUpperCase().replace(/-/g, '_'), m[2]!] as const
  }),
)
const text = (name: string, def: string): string => args.get(name) ?? process.env[name] ?? def
const num = (name: string, def: number): number => Number(text(name, String(def)))
const scenarios = text('SCENARIOS', 'list,writes').split(',')
const PARTNERS = num('PARTNERS', 5000)
const WRITES = num('WRITES', 100_000)
const ROUNDS = num('ROUNDS', 3)
const PG_URL = text('PG_URL', 'postgres://postgres@127.0.0.1:5432/test')

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1]!
const mb = (bytes: number): string => (bytes / 1048576).toFixed(2)
const pgSchema = (): string => `duet_bench_${process.pid}_${Date.now()}`
const dropSchema = async (schema: string): Promise<void> => {
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end())
}

async function listScenario(kind: 'memory' | 'sqlite' | 'postgres'): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'duet-bench-'))
  const schema = pgSchema()
  const storeUrl = { memory: 'memory:', sqlite: `sqlite:${join(dir, 'duet.db')}`, postgres: `${PG_URL}?schema=${schema}` }[kind]
  const app = await build({ env: {}, config: { storeUrl, host: '127.0.0.1', port: 0, logLevel: 'silent' }, logger: false })
  try {
    const big = 'x'.repeat(4096)
    for (let i = 0; i < PARTNERS; i += 500) {
      const n = Math.min(500, PARTNERS - i)
      await Promise.all(Array.from({ length: n }, (_, j) => app.store.append({ from: 'heavy', to: `u${i + j}`, msg: big, read: false, delivered: false })))
    }
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    if (address === null || typeof address === 'string') throw new Error('no port')
    const base = `http://127.0.0.1:${address.port}/users/heavy/conversations`
    const get = async (query: string): Promise<{ ms: number; bytes: number; next: string | null }> => {
      const start = performance.now()
      const body = await (await fetch(`${base}${query}`)).text()
      const ms = performance.now() - start
      return { ms, bytes: Buffer.byteLength(body), next: (JSON.parse(body) as { nextBefore: string | null }).nextBefore }
    }
    const timed = async (query: string): Promise<string> => {
      const runs = []
      for (let i = 0; i < 20; i++) runs.push(await get(query))
      return `${median(runs.map((r) => r.ms)).toFixed(1)} ms, ${(runs[0]!.bytes / 1024).toFixed(1)} KB`
    }
    const first = await timed('')
    const largest = await timed('?limit=200')
    let walkMs = 0
    let walkBytes = 0
    let pages = 0
    for (let before: string | null = ''; before !== null; pages++) {
      const page = await get(`?limit=200${before === '' ? '' : `&before=${before}`}`)
      walkMs += page.ms
      walkBytes += page.bytes
      before = page.next
    }
    const rssBefore = process.memoryUsage().rss
    let slowest = 0
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => get('')))
      slowest = Math.max(slowest, ...answers.map((a) => a.ms))
    }
    const rssAfter = process.memoryUsage().rss
    console.log(
      `${kind.padEnd(8)} first page ${first} | limit 200: ${largest} | all ${pages} pages: ${walkMs.toFixed(0)} ms, ${mb(walkBytes)} MB` +
        ` | 10 parallel ×3: slowest ${slowest.toFixed(1)} ms, RSS ${mb(rssBefore)} → ${mb(rssAfter)} MB`,
    )
  } finally {
    await app.close()
    rmSync(dir, { recursive: true, force: true })
    if (kind === 'postgres') await dropSchema(schema)
  }
}

/** Appends WRITES messages, 500 in flight; pair k % pairs, alternating direction. */
async function appendAll(store: MessageStore, pairs: number): Promise<void> {
  let next = 0
  const message = (k: number): NewMessage => {
    const p = k % pairs
    return { from: k % 2 ? `a${p}` : `b${p}`, to: k % 2 ? `b${p}` : `a${p}`, msg: 'x'.repeat(100), read: false, delivered: true }
  }
  const worker = async (): Promise<void> => {
    while (next < WRITES) await store.append(message(next++))
  }
  await Promise.all(Array.from({ length: 500 }, worker))
}

async function sqliteWrite(pairs: number, keep: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'duet-bench-'))
  const store = new SqliteMessageStore({ path: join(dir, 'duet.db') })
  // The baseline: the store as it is, minus the batch's conversation statement.
  const list = (store as unknown as { conversationList: { write(): void; discard(): void } }).conversationList
  if (!keep) list.write = () => list.discard()
  const cpu = process.cpuUsage()
  await appendAll(store, pairs)
  const used = process.cpuUsage(cpu)
  await store.close()
  rmSync(dir, { recursive: true, force: true })
  return (used.user + used.system) / WRITES
}

async function postgresWrite(pairs: number, keep: boolean): Promise<number> {
  const schema = pgSchema()
  const store = await new PostgresMessageStore({ url: PG_URL, schema }).start()
  try {
    if (!keep) {
      const client = new pg.Client({ connectionString: PG_URL })
      await client.connect()
      await client.query(`ALTER TABLE "${schema}".duet_messages DISABLE TRIGGER duet_conversations_added`).finally(() => client.end())
    }
    const start = performance.now()
    await appendAll(store, pairs)
    return WRITES / ((performance.now() - start) / 1000)
  } finally {
    await store.close()
    await dropSchema(schema)
  }
}

async function writesScenario(): Promise<void> {
  const engines: Array<[string, (pairs: number, keep: boolean) => Promise<number>, string]> = [['sqlite', sqliteWrite, 'µs CPU/msg']]
  if (PG_URL !== '') engines.push(['postgres', postgresWrite, 'msg/s'])
  for (const [name, run, unit] of engines) {
    for (const pairs of [50, Math.floor(WRITES / 2)]) {
      const off: number[] = []
      const on: number[] = []
      for (let round = 0; round < ROUNDS; round++) {
        off.push(await run(pairs, false))
        on.push(await run(pairs, true))
      }
      const show = (v: number[]): string => `${median(v).toFixed(name === 'sqlite' ? 1 : 0)} (${v.map((x) => x.toFixed(name === 'sqlite' ? 1 : 0)).join(', ')})`
      console.log(`${name.padEnd(8)} ${String(pairs).padStart(6)} pairs, ${unit}: without the list ${show(off)} | with it ${show(on)}`)
    }
  }
}

if (scenarios.includes('list')) {
  console.log(`list: one 4 KB message to each of ${PARTNERS} uids; medians of 20 requests`)
  const kinds: Array<'memory' | 'sqlite' | 'postgres'> = PG_URL === '' ? ['memory', 'sqlite'] : ['memory', 'sqlite', 'postgres']
  for (const kind of kinds) await listScenario(kind)
}
if (scenarios.includes('writes')) {
  console.log(`writes: ${WRITES} appends, 500 in flight; medians of ${ROUNDS} interleaved rounds (each round in brackets)`)
  await writesScenario()
}
