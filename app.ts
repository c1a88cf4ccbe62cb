// Builds the Fastify instance: plugins (config, connection admission, store, webhook, hub,
// websocket, Host check, auth, docs, metrics), then routes, then the demo page's static files.
import { parse } from 'node:querystring'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { checkExposure } from './src/config/exposure.js'
import { loadConfig } from './src/config/load.js'
import type { Config } from './src/config/schema.js'
import { isStorableText, STORABLE_TEXT } from './src/protocol/schemas.js'
import { finiteKeyword } from './routes/common-schemas.js'
import configPlugin from './plugins/config.js'
import errorHandlerPlugin from './plugins/error-handler.js'
import hostCheckPlugin from './plugins/host-check.js'
import connectionAdmissionPlugin from './plugins/connection-admission.js'
import storePlugin from './plugins/store.js'
import hubPlugin from './plugins/hub.js'
import clusterPlugin from './plugins/cluster.js'
import websocketPlugin from './plugins/websocket.js'
import adminAuthPlugin from './plugins/admin-auth.js'
import authPlugin from './plugins/auth.js'
import userAuthPlugin from './plugins/user-auth.js'
import heartbeatPlugin from './plugins/heartbeat.js'
import docsPlugin from './plugins/docs.js'
import metricsPlugin from './plugins/metrics.js'
import staticPlugin from './plugins/static.js'
import retentionPlugin from './plugins/retention.js'
import webhookPlugin from './plugins/webhook.js'
import wsRoute from './routes/ws.js'
import adminRoutes from './routes/admin.js'
import healthRoutes from './routes/health.js'
import metricsRoutes from './routes/metrics.js'
import userRoutes from './routes/users.js'
import webhookRoutes from './routes/webhooks.js'

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

/**
 * Query strings as usual, except that an empty value counts as absent: a client that fills
 * `?before=&limit=` for the first page gets the newest messages at the default page size.
 */
function parseQuery(str: string): Record<string, unknown> {
  const query = parse(str)
  for (const key of Object.keys(query)) if (query[key] === '') delete query[key]
  return query
}

export async function build(options: BuildOptions = {}): Promise<FastifyInstance> {
  const config: Config = { ...loadConfig(options.env), ...options.config }
  // Throws ConfigError when exposed without auth or ADMIN_TOKEN and not ALLOW_INSECURE.
  const insecure = await checkExposure(config)
  const app = Fastify({
    logger: options.logger ?? loggerOptions(config),
    trustProxy: config.trustProxy,
    // uids go up to 128 characters, in paths too; longer ones must reach the schema (400).
    routerOptions: { maxParamLength: 1024, querystringParser: parseQuery },
    // The router's own refusals (a path that is not valid percent-encoding, a parameter over
    // maxParamLength) go through the error handler like every other error (ErrorResponse). The
    // option is typed for every request generic, so its reply is taken as the plain one.
    frameworkErrors: (error, _request, reply) => void (reply as FastifyReply).send(error),
    // A shutdown serves what is in flight while the WebSockets say goodbye (the preClose
    // hooks), then cuts what is still open: a client reading an export slowly must not keep
    // the store from closing cleanly (an unclean close makes the next start push again).
    forceCloseConnections: true,
    // A request on a kept-alive connection whose head or body is still not all in after
    // HEADERS_TIMEOUT_MS gets Node's 408 (checked every 30 s); the first request of each
    // connection is timed exactly, and counted, by PendingConnections.
    requestTimeout: config.headersTimeoutMs,
    // REST ids are refused like WS ones when they could not be stored as sent (schemas.ts).
    ajv: { customOptions: { formats: { [STORABLE_TEXT]: isStorableText }, keywords: [finiteKeyword] } },
  }).withTypeProvider<TypeBoxTypeProvider>()
  if (insecure.length > 0) {
    app.log.error(
      { host: config.host, missing: insecure },
      `ALLOW_INSECURE=true: listening on ${config.host} without ${insecure.join(' and ')}; anyone who reaches this port can bind as any user or read admin data`,
    )
  }

  await app.register(errorHandlerPlugin)
  await app.register(configPlugin, { config })
  await app.register(connectionAdmissionPlugin)
  await app.register(docsPlugin)
  await app.register(storePlugin)
  await app.register(authPlugin)
  await app.register(metricsPlugin)
  await app.register(clusterPlugin)
  await app.register(webhookPlugin)
  await app.register(hubPlugin)
  await app.register(websocketPlugin)
  await app.register(hostCheckPlugin)
  await app.register(heartbeatPlugin)
  await app.register(adminAuthPlugin)
  await app.register(userAuthPlugin)
  await app.register(retentionPlugin)

  await app.register(wsRoute)
  await app.register(adminRoutes)
  await app.register(webhookRoutes)
  await app.register(healthRoutes)
  await app.register(userRoutes)
  await app.register(metricsRoutes)
  await app.register(staticPlugin)
  return app
}
