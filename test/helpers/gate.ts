// Holds calls of a method of a real component (a store, a presence) at a chosen point, so a
// test can order two operations whose order the server does not control: the races between
// a message's write and a bind, or between two presence lookups.

export interface Gate {
  /** Resolves once a held call has begun (and waits). */
  entered: Promise<void>
  /** Lets every held call, and every later one, go on. */
  release(): void
  /** Puts the original method back. */
  restore(): void
}

type AsyncMethod = (...args: never[]) => Promise<unknown>
type AsyncKeys<T> = { [K in keyof T]: T[K] extends AsyncMethod ? K : never }[keyof T]

/**
 * Holds the `call`-th call of `target[name]` (1 = the first), or every call when `call` is
 * undefined: before it runs, or with `at: 'answer'` once it has run, before its caller gets
 * the answer.
 */
export function gateCall<T extends object, K extends AsyncKeys<T>>(
  target: T,
  name: K,
  call?: number,
  at: 'call' | 'answer' = 'call',
): Gate {
  const original = target[name]
  const method = original as unknown as (...args: unknown[]) => Promise<unknown>
  let release!: () => void
  let enter!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const entered = new Promise<void>((resolve) => (enter = resolve))
  let calls = 0
  const gated = async (...args: unknown[]): Promise<unknown> => {
    const held = call === undefined || ++calls === call
    const answer = at === 'answer' ? await method.apply(target, args) : undefined
    if (held) {
      enter()
      await gate
    }
    return at === 'answer' ? answer : method.apply(target, args)
  }
  target[name] = gated as T[K]
  return { entered, release, restore: () => (target[name] = original) }
}

/** Resolves once the `call`-th call of `target[name]` has answered (and what that answer set off has run). */
export function answered<T extends object, K extends AsyncKeys<T>>(target: T, name: K, call: number): Promise<void> {
  const original = target[name]
  const method = original as unknown as (...args: unknown[]) => Promise<unknown>
  let calls = 0
  return new Promise<void>((resolve) => {
    const watched = async (...args: unknown[]): Promise<unknown> => {
      const mine = ++calls === call
      const result = await method.apply(target, args)
      if (mine) setImmediate(resolve)
      return result
    }
    target[name] = watched as T[K]
  })
}
