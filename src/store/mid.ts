// mids cross the store boundary as strings of digits; SQL compares them as int64.
const INT64_MAX = 9223372036854775807n

/** The mid as an int64 bound; larger values clamp (a `since` beyond every stored mid matches nothing). */
export function midBound(mid: string): bigint {
  if (!/^\d+$/.test(mid)) throw new TypeError(`invalid mid ${JSON.stringify(mid)}: expected a string of digits`)
  const value = BigInt(mid)
  return value > INT64_MAX ? INT64_MAX : value
}

/** The bound for "no upper limit", e.g. history with `before: null`. */
export const MAX_MID = INT64_MAX
