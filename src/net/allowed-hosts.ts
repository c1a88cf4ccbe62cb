// The Host check that stops DNS rebinding against a server on loopback: a page on another
// site whose name the attacker re-points at 127.0.0.1 reaches the server from the victim's
// own browser, with that site's name in Host. Loopback names and addresses pass, and the
// names of ALLOWED_HOSTS; any port.
import { isIP } from 'node:net'
import { isLoopbackAddress } from './loopback.js'

const PORT = /^(:\d*)?$/
const HOST_NAME = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/

/**
 * The host of a Host header, lower-case, without its port or a final dot, IPv6 in brackets;
 * undefined when the header is missing or not a host[:port].
 */
export function hostOfHeader(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const value = header.trim().toLowerCase()
  let host: string
  if (value.startsWith('[')) {
    const end = value.indexOf(']')
    if (end < 0 || !PORT.test(value.slice(end + 1))) return undefined
    host = value.slice(0, end + 1)
    return isIP(host.slice(1, -1)) === 6 ? host : undefined
  }
  const colon = value.indexOf(':')
  if (colon >= 0 && !PORT.test(value.slice(colon))) return undefined
  host = (colon >= 0 ? value.slice(0, colon) : value).replace(/\.$/, '')
  return HOST_NAME.test(host) ? host : undefined
}

/**
 * An ALLOWED_HOSTS entry in the form hostOfHeader gives, or undefined when it is not a bare
 * host name or address (a scheme, a port, a path, a wildcard).
 */
export function allowedHostEntry(entry: string): string | undefined {
  const value = entry.trim().toLowerCase()
  if (isIP(value) === 6) return `[${value}]`
  if (/[:/*@]/.test(value.replace(/^\[[^\]]*\]$/, '[]'))) return undefined
  return hostOfHeader(value)
}

export class HostAllowList {
  private readonly names: Set<string>

  /** `extra`: entries already checked by allowedHostEntry. */
  constructor(extra: readonly string[] = []) {
    this.names = new Set(['localhost', ...extra])
  }

  allows(header: string | undefined): boolean {
    const host = hostOfHeader(header)
    return host !== undefined && (this.names.has(host) || isLoopbackAddress(host))
  }
}
