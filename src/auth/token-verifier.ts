// Verifies the JWT a client presents (on bind, or as a Bearer token on the user routes)
// with jose: signature, exp and nbf when present (exp required with JWT_REQUIRE_EXP), and iss/aud
// when configured; then that `sub` is the uid.
import { createPublicKey, type KeyObject } from 'node:crypto'
import { errors, jwtVerify, type JWTVerifyOptions } from 'jose'
import { ConfigError } from '../config/load.js'

/** Why a token was refused. `wrong-subject` is the one that means "valid, but not yours". */
export type AuthFailure = 'missing' | 'invalid' | 'expired' | 'not-yet-valid' | 'wrong-issuer' | 'wrong-audience' | 'wrong-subject'

export class AuthError extends Error {
  override name = 'AuthError'
  constructor(readonly reason: AuthFailure) {
    super(`authentication failed: ${reason}`)
  }
}

export interface TokenVerifier {
  /** The algorithm(s) accepted, for the startup log. */
  readonly algorithms: readonly string[]
  /** Resolves when `token` is a valid JWT whose `sub` is `uid`; rejects with AuthError otherwise. */
  verify(token: string | undefined, uid: string): Promise<void>
}

export interface TokenVerifierConfig {
  jwtSecret: string | undefined
  jwtPublicKey: string | undefined
  jwtIssuer: string | undefined
  jwtAudience: string | undefined
  jwtClockTolerance: number
  jwtRequireExp: boolean
}

/** A verifier for the configured key, or null when auth is off (open mode). */
export function createTokenVerifier(config: TokenVerifierConfig): TokenVerifier | null {
  if (config.jwtSecret !== undefined) {
    return new JwtVerifier(new TextEncoder().encode(config.jwtSecret), ['HS256'], config)
  }
  if (config.jwtPublicKey !== undefined) {
    const key = readPublicKey(config.jwtPublicKey)
    return new JwtVerifier(key, [algorithmFor(key)], config)
  }
  return null
}

function readPublicKey(pem: string): KeyObject {
  try {
    return createPublicKey(pem)
  } catch (err) {
    throw new ConfigError(`JWT_PUBLIC_KEY: expected a PEM public key (${(err as Error).message})`)
  }
}

const MIN_RSA_BITS = 2048

/** One algorithm per key: a token never picks its own (no alg confusion). */
function algorithmFor(key: KeyObject): string {
  if (key.asymmetricKeyType === 'rsa') {
    // jose refuses smaller RSA keys at verification: every token would fail, so refuse the start.
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0
    if (bits < MIN_RSA_BITS) throw new ConfigError(`JWT_PUBLIC_KEY: an RSA key needs ${MIN_RSA_BITS} bits or more, this one has ${bits}`)
    return 'RS256'
  }
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256'
  throw new ConfigError(
    `JWT_PUBLIC_KEY: expected an RSA (RS256) or P-256 EC (ES256) key, got ${key.asymmetricKeyType ?? 'unknown'}` +
      (key.asymmetricKeyDetails?.namedCurve ? ` on ${key.asymmetricKeyDetails.namedCurve}` : ''),
  )
}

class JwtVerifier implements TokenVerifier {
  private readonly options: JWTVerifyOptions

  constructor(
    private readonly key: Uint8Array | KeyObject,
    readonly algorithms: readonly string[],
    config: TokenVerifierConfig,
  ) {
    this.options = {
      algorithms: [...algorithms],
      // exp and nbf are checked whenever present; JWT_REQUIRE_EXP refuses tokens that never expire.
      clockTolerance: config.jwtClockTolerance,
      requiredClaims: config.jwtRequireExp ? ['exp', 'sub'] : ['sub'],
      ...(config.jwtIssuer !== undefined ? { issuer: config.jwtIssuer } : {}),
      ...(config.jwtAudience !== undefined ? { audience: config.jwtAudience } : {}),
    }
  }

  async verify(token: string | undefined, uid: string): Promise<void> {
    if (token === undefined || token === '') throw new AuthError('missing')
    let sub: unknown
    try {
      sub = (await jwtVerify(token, this.key, this.options)).payload.sub
    } catch (err) {
      throw new AuthError(failureOf(err))
    }
    // A `sub` that is not a string makes the token invalid (RFC 7519 4.1.2), not someone else's.
    if (typeof sub !== 'string') throw new AuthError('invalid')
    if (sub !== uid) throw new AuthError('wrong-subject')
  }
}

function failureOf(err: unknown): AuthFailure {
  if (err instanceof errors.JWTExpired) return 'expired'
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'not-yet-valid'
    if (err.claim === 'iss') return 'wrong-issuer'
    if (err.claim === 'aud') return 'wrong-audience'
  }
  return 'invalid'
}
