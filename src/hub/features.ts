// The signals a connection opts into at bind (`features`), as a bitmask on its session: a
// connection that did not ask for one never gets its frames, and a bind that asked for none
// is answered exactly as before features existed (no `features` field on its 201).

export const Feature = {
  receipts: 1,
  typing: 2,
  presence: 4,
  carbons: 8,
} as const

export type FeatureName = keyof typeof Feature

export interface AcceptedFeatures {
  mask: number
  /** What the 201 echoes: the accepted names in the order asked, once each; undefined when none were asked for. */
  echo: string[] | undefined
}

const NONE: AcceptedFeatures = { mask: 0, echo: undefined }

/**
 * The features of a bind frame that this server offers: every known name, once. (`carbons`
 * too without MULTI_DEVICE: a uid then has one connection at a time, so there is no other to
 * copy to, but its bind still replays what the user sent from the device before.)
 */
export function acceptFeatures(asked: readonly string[] | undefined): AcceptedFeatures {
  if (asked === undefined) return NONE
  let mask = 0
  const echo: string[] = []
  for (const name of asked) {
    if (!Object.hasOwn(Feature, name)) continue
    const bit = Feature[name as FeatureName]
    if ((mask & bit) !== 0) continue
    mask |= bit
    echo.push(name)
  }
  return { mask, echo }
}

/** True when the session's mask has the feature. */
export const wants = (features: number, bit: number): boolean => (features & bit) !== 0
