// Refuses (403) every request and WebSocket upgrade whose Host header names another site,
// while the server listens on loopback: through DNS rebinding a page on any site could
// otherwise reach a developer's local server from their own browser (admin routes, every
// user's history in open mode, /ws). Loopback names and addresses pass, with any port, and so
// do the names in ALLOWED_HOSTS; setting ALLOWED_HOSTS turns the check on for any HOST.
// Registered after the websocket plugin, whose onRequest hook marks an upgrade so that its
// socket is destroyed once the 403 is written: before it, a refused upgrade's socket would stay
// open (and hold up close()). No other hook runs before this one.
import fp from 'fastify-plugin'
import { HostAllowList } from '../src/net/allowed-hosts.js'
import { HostNotAllowed } from './http-errors.js'
import { isLoopbackHost } from '../src/net/loopback.js'

/** How many Host headers the request has (rawHeaders: name, value, name, value, …). */
function hostHeaders(raw: string[]): number {
  let count = 0
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') count++
  return count
}

export default fp(
  async (app) => {
    const { host, allowedHosts } = app.config
    if (allowedHosts === undefined && !(await isLoopbackHost(host))) return
    const allowList = new HostAllowList(allowedHosts)
    const served = ['localhost', '127.0.0.1', '[::1]', ...(allowedHosts ?? [])].join(', ')

    app.addHook('onRequest', async (request) => {
      const header = request.headers.host
      // Node keeps the first of several Host headers: a second could name another site.
      if (allowList.allows(header) && hostHeaders(request.raw.rawHeaders) === 1) return
      request.log.info({ host: header }, 'request refused: Host not allowed')
      throw new HostNotAllowed(JSON.stringify(header ?? ''), served)
    })
  },
  { name: 'host-check', dependencies: ['config', 'websocket', 'error-handler'] },
)
