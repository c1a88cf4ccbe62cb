// Builds the Fastify instance: plugins (config, store, hub, websocket, auth, docs), then routes.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { loadConfig, type Config } from './config.js'
import configPlugin from '../plugins/config.js'
import storePlugin from '../plugins/store.js'
import hubPlugin from '../plugins/hub.js'
import websocketPlugin from '../plugins/websocket.js'
import adminAuthPlugin from '../plugins/admin-auth.js'
import docsPlugin from '../plugins/docs.js'
import retentionPlugin from '../plugins/retention.js'
import wsRoute from '../routes/ws.js'
import adminRoutes from '../routes/admin.js'
import healthRoutes from '../routes/health.js'
import userRoutes from '../routes/users.js'

export interface BuildOptions {
  /** Overrides on top of the environment's configuration. */
  config?: Partial<Config>
  /** Environment to read the configuration from (default: process.env). */
  env?: Record<string, string | undefined>
  logger?: FastifyServerOptions['logger']
}

export function loggerOptions(config: Config): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    base: { node: config.nodeId },
    ...(config.logPretty ? { transport: { target: 'pino-pretty' } } : {}),
  }
}

export async function build(options: BuildOptions = {}): Promise<FastifyInstance> {
  const config: Config = { ...loadConfig(options.env), ...options.config }
  const app = Fastify({
    logger: options.logger ?? loggerOptions(config),
  }).withTypeProvider<TypeBoxTypeProvider>()

  await app.register(configPlugin, { config })
  await app.register(docsPlugin)
  await app.register(storePlugin)
  await app.register(hubPlugin)
  await app.register(websocketPlugin)
  await app.register(adminAuthPlugin)
  await app.register(retentionPlugin)

  await app.register(wsRoute)
  await app.register(adminRoutes)
  await app.register(healthRoutes)
  await app.register(userRoutes)
  return app
}
