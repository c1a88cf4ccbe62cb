// What is loopback, decided by address: 127.0.0.0/8 and ::1 (and their IPv4-mapped forms,
// which BlockList matches too). A name is loopback only when every address it resolves to
// is: HOST=127.attacker.example starts like a loopback address and is not one.
import { lookup as dnsLookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'

const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')

/** `[::1]` → `::1`: the form Host headers and URLs give IPv6 addresses. */
const unbracket = (host: string): string => (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host)

/** An IP address literal (IPv6 with or without brackets) in a loopback range. */
export function isLoopbackAddress(address: string): boolean {
  const bare = unbracket(address)
  const family = isIP(bare)
  if (family === 0) return false
  try {
    return LOOPBACK.check(bare, family === 4 ? 'ipv4' : 'ipv6')
  } catch {
    return false // a form BlockList does not take (an IPv6 zone id): not known to be loopback
  }
}

/** Resolves a name to every address it has (dns.lookup, as listen() uses: /etc/hosts, then DNS). */
export type HostLookup = (hostname: string) => Promise<Array<{ address: string }>>

const systemLookup: HostLookup = (hostname) => dnsLookup(hostname, { all: true })

/**
 * Whether listening on `host` keeps the server on this machine: an address literal is judged
 * as it is, a name by every address it resolves to. A name that does not resolve is not
 * known to be loopback, so it counts as exposed.
 */
export async function isLoopbackHost(host: string, lookup: HostLookup = systemLookup): Promise<boolean> {
  if (isIP(unbracket(host)) !== 0) return isLoopbackAddress(host)
  let addresses: Array<{ address: string }>
  try {
    addresses = await lookup(host)
  } catch {
    return false
  }
  return addresses.length > 0 && addresses.every((a) => isLoopbackAddress(a.address))
}
