// Starts the real app on a free port for a test, and closes it when the test ends.
import type { FastifyInstance } from 'fastify'
import { build } from '../../app.js'
import type { Config } from '../../src/config/schema.js'

export interface RunningApp {
  app: FastifyInstance
  /** http://127.0.0.1:PORT */
  url: string
  /** ws://127.0.0.1:PORT/ws */
  wsUrl: string
}

interface Teardown {
  teardown(fn: () => unknown): void
}

export async function startApp(t: Teardown, config: Partial<Config> = {}): Promise<RunningApp> {
  const app = await build({
    env: {},
    config: { storeUrl: 'memory:', host: '127.0.0.1', port: 0, ...config },
    logger: false,
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const url = `http://127.0.0.1:${address.port}`
  return { app, url, wsUrl: `ws://127.0.0.1:${address.port}/ws` }
}
