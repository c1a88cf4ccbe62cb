// Whether the configuration exposes the server without protection: a HOST beyond loopback
// needs JWT auth and ADMIN_TOKEN, unless ALLOW_INSECURE says otherwise.
import { isLoopbackHost, type HostLookup } from '../net/loopback.js'
import { ConfigError } from './load.js'
import type { Config } from './schema.js'

/** True when auth on bind and on the user routes is configured. */
export function authEnabled(config: Pick<Config, 'jwtSecret' | 'jwtPublicKey'>): boolean {
  return config.jwtSecret !== undefined || config.jwtPublicKey !== undefined
}

/**
 * Refuses a configuration that exposes the server beyond loopback without JWT auth or
 * without ADMIN_TOKEN, unless ALLOW_INSECURE is set. Returns the reasons it let pass. HOST is
 * judged by the addresses it resolves to, not by how it is spelt.
 */
export async function checkExposure(config: Config, lookup?: HostLookup): Promise<string[]> {
  if (await isLoopbackHost(config.host, lookup)) return []
  const missing: string[] = []
  if (!authEnabled(config)) missing.push('JWT_SECRET or JWT_PUBLIC_KEY')
  if (config.adminToken === undefined) missing.push('ADMIN_TOKEN')
  if (missing.length === 0) return []
  if (!config.allowInsecure) {
    throw new ConfigError(
      `Refusing to listen on HOST=${config.host} without ${missing.join(' and ')}: ` +
        'anyone who reaches the port could impersonate users or read admin data. ' +
        'Set them, listen on 127.0.0.1, or set ALLOW_INSECURE=true to run exposed anyway.',
    )
  }
  return missing
}
