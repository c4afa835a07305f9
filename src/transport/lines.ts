/**
 * Control messages on tunnel protocol 2 travel as lines (one JSON object, then `\n`) on the
 * control stream. This splits a byte stream into them and bounds what it holds: a line longer
 * than `maxBytes` cannot be resynchronised past, so the owner closes the tunnel.
 */

/** Splits bytes into lines of at most `maxBytes` bytes, the `\n` not counted. */
export class LineSplitter {
  readonly #maxBytes: number;
  #parts: Buffer[] = [];
  #held = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /**
   * Takes one chunk; calls `onLine` for every line it completes. Returns false, and drops what
   * it holds, once a line grows past the bound.
   */
  push(chunk: Buffer, onLine: (line: Buffer) => void): boolean {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      if (this.#held + end - start > this.#maxBytes) {
        this.#parts = [];
        this.#held = 0;
        return false;
      }
      if (nl === -1) {
        if (end > start) {
          this.#parts.push(chunk.subarray(start));
          this.#held += end - start;
        }
        return true;
      }
      const piece = chunk.subarray(start, nl);
      const line =
        this.#parts.length === 0
          ? piece
          : Buffer.concat([...this.#parts, piece], this.#held + piece.length);
      this.#parts = [];
      this.#held = 0;
      if (line.length > 0) onLine(line);
      start = nl + 1;
    }
  }
}
