// The conversation list shows each conversation's newest message as a preview of bounded
// length, so a page of the list is bounded by its size, never by what users wrote.

/** Longest preview, in characters (code points, like MAX_MESSAGE_LENGTH). */
export const PREVIEW_LENGTH = 200

export interface Preview {
  msg: string
  /** True when `msg` is a cut of a longer text. */
  truncated: boolean
}

/**
 * The first PREVIEW_LENGTH characters of `text`. Counted in code points, so a surrogate pair
 * (an emoji, say) is kept whole or left out, never split into a lone half.
 */
export function preview(text: string): Preview {
  // Fast path: UTF-16 units bound code points from above.
  if (text.length <= PREVIEW_LENGTH) return { msg: text, truncated: false }
  let end = 0
  for (let points = 0; points < PREVIEW_LENGTH && end < text.length; points++) {
    end += text.codePointAt(end)! > 0xffff ? 2 : 1
  }
  return end >= text.length ? { msg: text, truncated: false } : { msg: text.slice(0, end), truncated: true }
}
