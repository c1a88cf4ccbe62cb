// Mids and refs as the client handles them: digit strings compared without number conversion,
// and a ref prefix of its own.

/** True when mid `a` is after mid `b` (both strings of digits, possibly beyond 2^53). */
export function midAfter(a: string, b: string): boolean {
  return a.length !== b.length ? a.length > b.length : a > b
}

/** A per-client ref prefix, unique across tabs and restarts of the same uid. */
export function randomPrefix(): string {
  const bytes = new Uint8Array(8)
  // getRandomValues, unlike randomUUID, also exists on plain-http pages.
  globalThis.crypto.getRandomValues(bytes)
  return `${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}-`
}
