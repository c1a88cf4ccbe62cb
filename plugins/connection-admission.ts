// Connection limits shared by the transport: app.connectionAdmission counts open WebSockets
// (routes/ws.ts admits upgrades with it) and, per address, TCP connections that have not yet
// sent their request, which are refused at once past MAX_CONNECTIONS_PER_IP and closed after
// HEADERS_TIMEOUT_MS. Refusals are logged in aggregate: a flood must not flood the log.
import fp from 'fastify-plugin'
import { ConnectionAdmission } from '../src/limits/connection-admission.js'
import { PendingConnections } from '../src/limits/pending-connections.js'
import { RefusalTally } from '../src/limits/refusal-tally.js'

declare module 'fastify' {
  interface FastifyInstance {
    connectionAdmission: ConnectionAdmission
  }
}

export default fp(
  async (app) => {
    const { maxConnections, maxConnectionsPerIp, headersTimeoutMs, trustProxy } = app.config
    const admission = new ConnectionAdmission(maxConnections, maxConnectionsPerIp)
    app.decorate('connectionAdmission', admission)

    const refused = new RefusalTally((count, addresses) =>
      app.log.warn({ refused: count, addresses }, 'connections refused: MAX_CONNECTIONS_PER_IP, counting those that have not sent their request'),
    )
    const timedOut = new RefusalTally((count, addresses) =>
      app.log.info({ closed: count, addresses }, `connections closed: no request head within HEADERS_TIMEOUT_MS (${headersTimeoutMs} ms)`),
    )
    const pending = new PendingConnections(app.server, {
      // Behind a trusted proxy every TCP peer is the proxy, which sends whole request heads:
      // counting its connections per address would only refuse the proxy.
      admission: trustProxy ? null : admission,
      headersTimeoutMs,
      onRefused: (ip) => refused.note(ip),
      onTimedOut: (ip) => timedOut.note(ip),
    })
    // An upgrade passes here before routes/ws.ts admits it. A plain request is followed from
    // the server's 'request' event (its body may still be coming): not settled here.
    app.addHook('onRequest', (request, _reply, done) => {
      if (request.raw.headers.upgrade !== undefined) pending.headReceived(request.raw.socket)
      done()
    })
    app.addHook('onClose', async () => {
      pending.stop()
      refused.close()
      timedOut.close()
    })
  },
  { name: 'connection-admission', dependencies: ['config'] },
)
