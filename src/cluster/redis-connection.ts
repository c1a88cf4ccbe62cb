// Redis connections for the cluster engines: fail fast while Redis is away (the caller
// decides what to do: deliver locally, report /readyz), reconnect forever in the background.
import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from '../logger.js'

/**
 * No offline queue and one retry: a command issued while Redis is down rejects at once
 * instead of waiting for a reconnect that may take minutes. The command timeout covers a
 * Redis that accepts the connection but does not answer (stopped, overloaded).
 */
export const FAIL_FAST: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 2000,
  connectTimeout: 5000,
}

/** An instance we were handed (owned by the caller), or a new one from a URL (owned by us). */
export function openRedis(redis: Redis | string): { redis: Redis; owned: boolean } {
  return typeof redis === 'string' ? { redis: new Redis(redis, FAIL_FAST), owned: true } : { redis, owned: false }
}

/** Resolves when `redis` can take commands; rejects after `timeoutMs`. */
export function waitReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve()
  if (redis.status === 'end') return Promise.reject(new Error('redis connection closed'))
  if (redis.status === 'wait') void redis.connect().catch(() => {})
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer)
      redis.off('ready', onReady)
      redis.off('end', onEnd)
      if (err) reject(err)
      else resolve()
    }
    const onReady = (): void => done()
    const onEnd = (): void => done(new Error('redis connection closed'))
    const timer = setTimeout(() => done(new Error(`redis not ready after ${timeoutMs} ms`)), timeoutMs)
    redis.on('ready', onReady)
    redis.on('end', onEnd)
  })
}

/**
 * Logs a connection's outages once each (ioredis emits 'error' on every reconnect attempt),
 * and keeps ioredis from printing "Unhandled error event" to stderr.
 */
export function logOutages(redis: Redis, logger: Logger | undefined, what: string): void {
  let down = false
  redis.on('error', (err: Error) => {
    if (down) return
    down = true
    logger?.warn({ err: err.message }, `${what}: redis unreachable, reconnecting`)
  })
  redis.on('ready', () => {
    if (!down) return
    down = false
    logger?.info(`${what}: redis reachable again`)
  })
}

/** Quits a connection we own, without hanging on a dead one. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return
  if (redis.status !== 'ready') {
    redis.disconnect()
    return
  }
  await redis.quit().catch(() => redis.disconnect())
}
