// The memory store's message texts, as UTF-8 in large buffers off the JS heap. Kept as strings,
// every stored text survived the young generation and was copied by the scavenges that
// followed its arrival (twice, to the survivor space and then to the old one): the largest
// part of duet-memory's garbage-collection pauses, and so of its latency tail. In buffers the
// incoming string dies young, and a scavenge has nothing of it to copy. (bench/README.md.)

import { Column } from './column.js'

/** Bytes per buffer; a text longer than this gets a buffer of its own. */
const CHUNK_BYTES = 1 << 20

export class TextArena {
  private readonly chunks: Buffer[] = []
  private current = Buffer.allocUnsafeSlow(0)
  private used = 0
  // Where each text is, by the index put() returned: its buffer, first byte and length.
  private readonly chunkOf = new Column(Int32Array)
  private readonly startOf = new Column(Int32Array)
  private readonly bytesOf = new Column(Int32Array)

  /** Stores `text`; returns its index (0, 1, 2, … in the order of the calls). */
  put(text: string): number {
    // Three bytes per UTF-16 unit at most: enough room whatever the text holds.
    if (this.used + text.length * 3 > this.current.length) {
      this.current = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, text.length * 3))
      this.chunks.push(this.current)
      this.used = 0
    }
    const bytes = this.current.write(text, this.used)
    this.chunkOf.push(this.chunks.length - 1)
    this.startOf.push(this.used)
    this.used += bytes
    return this.bytesOf.push(bytes)
  }

  get(index: number): string {
    const bytes = this.bytesOf.get(index)
    if (bytes === 0) return ''
    const start = this.startOf.get(index)
    return this.chunks[this.chunkOf.get(index)]!.toString('utf8', start, start + bytes)
  }

  /** The text goes: its bytes are zeroed (an erasure leaves nothing readable) and it reads as ''. */
  erase(index: number): void {
    const bytes = this.bytesOf.get(index)
    if (bytes === 0) return
    const start = this.startOf.get(index)
    this.chunks[this.chunkOf.get(index)]!.fill(0, start, start + bytes)
    this.bytesOf.set(index, 0)
  }
}
