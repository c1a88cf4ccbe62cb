// The memory store's messages as columns indexed by seq - 1, off the JS heap (column.ts):
// sender and recipient as uid numbers, each uid's string kept once; time; read and delivered
// flags. A message is then no heap object at all, and growing the columns copies nothing.
import { Column } from './column.js'

export const READ = 1
export const DELIVERED = 2

export class MessageColumns {
  /** Each uid once, by its number; `numbers` maps it back. */
  private readonly uids: string[] = []
  private readonly numbers = new Map<string, number>()
  private readonly from = new Column(Int32Array)
  private readonly to = new Column(Int32Array)
  private readonly time = new Column(Float64Array)
  private readonly flagBits = new Column(Uint8Array)

  /**
   * Appends a message; returns its index, seq - 1. sender() and recipient() then give the one
   * string kept for each uid (the first one seen), which the indexes share as keys.
   */
  push(from: string, to: string, ts: number, flags: number): number {
    this.from.push(this.number(from))
    this.to.push(this.number(to))
    this.time.push(ts)
    return this.flagBits.push(flags)
  }

  sender(index: number): string {
    return this.uids[this.from.get(index)]!
  }

  recipient(index: number): string {
    return this.uids[this.to.get(index)]!
  }

  ts(index: number): number {
    return this.time.get(index)
  }

  flags(index: number): number {
    return this.flagBits.get(index)
  }

  setFlag(index: number, flag: number, on: boolean): void {
    const flags = this.flagBits.get(index)
    this.flagBits.set(index, on ? flags | flag : flags & ~flag)
  }

  private number(uid: string): number {
    let n = this.numbers.get(uid)
    if (n === undefined) {
      n = this.uids.push(uid) - 1
      this.numbers.set(uid, n)
    }
    return n
  }
}
