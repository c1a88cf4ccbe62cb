// ALLOWED_ORIGINS entries: browser origins, in the form a browser's Origin header gives them.
// An entry that is not one (no scheme, a wildcard, a path) could never match, so the
// server refuses it at start instead of refusing every browser later.

/**
 * `scheme://host[:port]`, lower-case, without a default port or a final slash; undefined when
 * `entry` is not an origin.
 */
export function originOf(entry: string): string | undefined {
  if (entry.includes('*') || !entry.includes('://')) return undefined
  let url: URL
  try {
    url = new URL(entry)
  } catch {
    return undefined
  }
  if (url.host === '' || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return undefined
  if (url.pathname !== '' && url.pathname !== '/') return undefined
  // Not url.origin: it is "null" for schemes a browser still sends (chrome-extension://…).
  return `${url.protocol}//${url.host}`.toLowerCase()
}
