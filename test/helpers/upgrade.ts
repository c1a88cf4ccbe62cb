// Opens a WebSocket and resolves with the HTTP status of the upgrade: 101 when it opened
// (the socket is closed again), else the status the server refused it with.
import WebSocket from 'ws'

export function upgradeStatus(url: string, options: WebSocket.ClientOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options)
    socket.once('open', () => {
      socket.close()
      resolve(101)
    })
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0)
      response.resume()
      socket.on('error', () => {}) // terminate() reports the aborted handshake as an error
      socket.terminate()
    })
    socket.once('error', (err) => reject(err))
  })
}
