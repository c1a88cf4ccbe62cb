// A growable column of numbers in typed-array chunks of a fixed size, for the memory store's
// per-message data. A JS array grows by copying itself into one half as large again, and on
// this VM that copy stalled the event loop (8.7 ms at a quarter-million small integers; the
// store's seven per-message arrays grew at the same message: 102 ms at the 257 594th,
// bench/README.md). A new chunk here is one small allocation, nothing is copied, and the
// numbers are off the JS heap: the garbage collector never visits them.

const CHUNK_BITS = 12
const CHUNK = 1 << CHUNK_BITS
const IN_CHUNK = CHUNK - 1

type Chunk = Int32Array | Float64Array | Uint8Array

export class Column {
  private readonly chunks: Chunk[] = []
  private size = 0

  /** @param Kind the chunks' type, which bounds the values: Int32Array, Float64Array, Uint8Array. */
  constructor(private readonly Kind: new (length: number) => Chunk) {}

  /** Appends `value`; returns its index. */
  push(value: number): number {
    if (this.size >>> CHUNK_BITS === this.chunks.length) this.chunks.push(new this.Kind(CHUNK))
    this.chunks[this.size >>> CHUNK_BITS]![this.size & IN_CHUNK] = value
    return this.size++
  }

  /** The value at `index`, which must be below `length`. */
  get(index: number): number {
    return this.chunks[index >>> CHUNK_BITS]![index & IN_CHUNK]!
  }

  set(index: number, value: number): void {
    this.chunks[index >>> CHUNK_BITS]![index & IN_CHUNK] = value
  }
}
