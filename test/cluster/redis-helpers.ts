// The machine's Redis for tests, with a key prefix of each test's own: tests never FLUSHDB,
// since a server may be using the same Redis. And a private redis-server of our own, for
// tests that kill and restart Redis.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'

export const REDIS_URL = process.env.DUET_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

export const freshPrefix = (): string => `duet_test_${process.pid}_${randomBytes(6).toString('hex')}:`

/** Deletes every key under `prefix` (SCAN + DEL), never anything else. */
export async function deleteKeys(prefix: string, url = REDIS_URL): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 })
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length > 0) await redis.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}

export async function keysUnder(prefix: string, url = REDIS_URL): Promise<string[]> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 })
  try {
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      keys.push(...batch)
      cursor = next
    } while (cursor !== '0')
    return keys.sort()
  } finally {
    redis.disconnect()
  }
}

export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** A redis-server of this test's own, in memory only, which the test may kill and restart. */
export class PrivateRedis {
  private child: ChildProcess | null = null

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  static async start(): Promise<PrivateRedis> {
    const server = new PrivateRedis(await freePort())
    await server.restart()
    return server
  }

  /** Starts the server (again, empty) on the same port; resolves once it accepts connections. */
  async restart(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] })
    this.child = child
    let output = ''
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)))
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes('Ready to accept connections')) resolve()
      })
    })
    child.removeAllListeners('exit')
    child.stdout!.resume()
  }

  /** SIGKILL: Redis vanishes with everything it held. */
  async kill(): Promise<void> {
    const child = this.child
    this.child = null
    if (child === null || child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
  }
}
