// Entry point: builds the app, listens, and shuts down cleanly on SIGTERM/SIGINT.
import { build } from './app.js'
import { ConfigError, loadConfig } from './src/config/load.js'

async function main(): Promise<void> {
  let config
  let app
  try {
    config = loadConfig()
    // The auth plugin logs whether auth is on (or open mode); build refuses an exposed
    // HOST without auth or ADMIN_TOKEN unless ALLOW_INSECURE=true.
    app = await build({ config })
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`)
      process.exit(1)
    }
    throw err
  }

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    app.log.info({ signal }, 'shutting down')
    const timer = setTimeout(() => {
      app.log.error('shutdown took too long, exiting')
      process.exit(1)
    }, config.shutdownTimeoutMs)
    timer.unref()
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))

  try {
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    // Close what the app opened, so the store records a clean stop and not a crash.
    await app.close().catch(() => undefined)
    throw err
  }
}

main().catch((err: unknown) => {
  // The message names what to fix; the stack only at debug level.
  const debug = process.env.LOG_LEVEL === 'debug' || process.env.LOG_LEVEL === 'trace'
  const text = err instanceof Error ? (debug ? (err.stack ?? err.message) : err.message) : String(err)
  process.stderr.write(`duet failed to start: ${text}\n`)
  process.exit(1)
})
