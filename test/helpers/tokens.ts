// Signs test JWTs with jose, so auth tests attack the server with real tokens.
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { SignJWT } from 'jose'

export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long'

export interface TokenClaims {
  sub?: string
  /** Seconds from now; negative = already expired. Omit for a 1 h token, null for none. */
  expiresIn?: number | null
  /** Seconds from now. */
  notBefore?: number
  iss?: string
  aud?: string
}

export async function signToken(
  claims: TokenClaims,
  key: Uint8Array | KeyObject = new TextEncoder().encode(TEST_SECRET),
  alg = 'HS256',
): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const jwt = new SignJWT({}).setProtectedHeader({ alg }).setIssuedAt(now)
  if (claims.sub !== undefined) jwt.setSubject(claims.sub)
  if (claims.expiresIn !== null) jwt.setExpirationTime(now + (claims.expiresIn ?? 3600))
  if (claims.notBefore !== undefined) jwt.setNotBefore(now + claims.notBefore)
  if (claims.iss !== undefined) jwt.setIssuer(claims.iss)
  if (claims.aud !== undefined) jwt.setAudience(claims.aud)
  return jwt.sign(key)
}

/** An RSA or P-256 key pair; the public key as PEM, with real newlines. */
export function keyPair(kind: 'rsa' | 'ec'): { privateKey: KeyObject; publicPem: string } {
  const pair =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  return { privateKey: pair.privateKey, publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() }
}

/** `header.payload.` with alg none: the classic forgery. */
export function unsignedToken(sub: string): string {
  const encode = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode({ sub, exp: now + 3600 })}.`
}
