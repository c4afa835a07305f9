/**
 * Reading what an engine says it used from a JSON answer as it streams past, without keeping
 * the answer: a byte scanner that follows strings and nesting, captures the (small) values the
 * relay counts — `usage` one or two levels down (`{usage}`, `{response: {usage}}`,
 * `{message: {usage}}`), a top-level `duration` — and counts the items of a top-level `data`
 * array (generated images). Memory is bounded: a captured value over `MAX_CAPTURE` is dropped.
 */

/** Largest captured value (a `usage` object is a few hundred bytes). */
const MAX_CAPTURE = 64 * 1024;
const QUOTE = 0x22;
/** Bytes of a string read one by one before the scan searches natively for its end. */
const SHORT_STRING = 64;
const BACKSLASH = 0x5c;

/** What a scanned answer said. */
export interface Scanned {
  /** The last `usage` object seen, parsed. */
  usage?: Record<string, unknown>;
  /** A top-level `duration` (seconds of audio, a transcription's). */
  duration?: number;
  /** Items of a top-level `data` array. */
  dataItems?: number;
}

/** A value being captured: its bytes in a buffer that grows up to `MAX_CAPTURE`. */
interface Capture {
  depth: number;
  key: string;
  buf: Buffer;
  length: number;
}

/** The bytes that can change what the scan reads below the second level: `"`, `{`, `[`, `}`, `]`. */
const STRUCTURE = new Uint8Array(256);
for (const c of [QUOTE, 0x7b, 0x5b, 0x7d, 0x5d]) STRUCTURE[c] = 1;

/**
 * The keys the scan acts on. A key is matched against them byte by byte as it is read, and
 * only which of them it was is kept: collecting each key's bytes to make a string of it cost
 * most of the 2.6 KiB the scan allocated for a small chat answer.
 */
const KEYS = ["usage", "duration", "data"] as const;
const ALL_KEYS = (1 << KEYS.length) - 1;

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * Feed it the answer's bytes in order, then read `result()`.
 * @example
 * const scan = new JsonScanner();
 * scan.feed(Buffer.from('{"usage":{"prompt_tokens":3}}'));
 * scan.result().usage; // { prompt_tokens: 3 }
 */
export class JsonScanner {
  #depth = 0;
  /** Whether each open container (index = depth - 1) is an object; only the first levels. */
  #objects: boolean[] = [];
  #inString = false;
  #escape = false;
  #expectKey = false;
  #awaitValue = false;
  /**
   * The key being read (levels 1 and 2 only): how many of its bytes were read (-1: no key is
   * being read) and which of `KEYS` it still matches, one bit each. Then the last key read at
   * each of those levels, one of `KEYS` or "" for any other.
   */
  #keyAt = -1;
  #keyMatch = 0;
  #keys: string[] = ["", "", ""];
  #capture: Capture | undefined;
  #dataDepth = 0;
  #dataExpect = false;
  #out: Scanned = {};

  feed(buf: Uint8Array): void {
    /** Where the next backslash at or after `i` is: -1 none left in `buf`, -2 not looked yet. */
    let backslash = -2;
    for (let i = 0; i < buf.length; i++) {
      // Inside a string that is neither captured nor a key, only its end and escapes matter:
      // jump to the next quote or backslash instead of reading each byte (a base64 image is
      // megabytes of one string; byte by byte the scan ran at about 200 MiB/s). The first
      // bytes are looked at here: most strings are short, and a native search costs a call
      // each (with one per string, most of a small chat answer's scan).
      if (this.#inString && !this.#escape && !this.#capture && this.#keyAt < 0) {
        let at = i;
        const near = Math.min(buf.length, i + SHORT_STRING);
        while (at < near && buf[at] !== QUOTE && buf[at] !== BACKSLASH) at++;
        if (at === near) {
          if (near === buf.length) return;
          if (backslash !== -1 && backslash < at) backslash = buf.indexOf(BACKSLASH, at);
          const quote = buf.indexOf(QUOTE, at);
          at = quote === -1 ? backslash : backslash === -1 ? quote : Math.min(quote, backslash);
          if (at === -1) return;
        }
        i = at;
      } else if (this.#depth > 2 && !this.#inString && !this.#capture) {
        // Deeper than any key, usage or item the scan reads (an embedding's numbers), only a
        // string's start and the nesting matter: skip to the next of those.
        let at = i;
        while (at < buf.length && !STRUCTURE[buf[at] as number]) at++;
        if (at === buf.length) return;
        i = at;
      }
      this.byte(buf[i] as number);
    }
  }

  /** What was read so far (a value still open is not in it). */
  result(): Scanned {
    return this.#out;
  }

  /** Reads one byte of the answer. */
  byte(c: number): void {
    const cap = this.#capture;
    if (this.#inString) {
      if (cap) this.#take(cap, c);
      if (this.#escape) this.#escape = false;
      else if (c === BACKSLASH) this.#escape = true;
      else if (c === QUOTE) {
        this.#inString = false;
        if (this.#keyAt >= 0) this.#keys[this.#depth] = this.#keyRead();
        this.#keyAt = -1;
      } else if (this.#keyAt >= 0) this.#keyByte(c);
      return;
    }
    if (isSpace(c)) {
      if (cap) this.#take(cap, c);
      return;
    }
    if (cap && this.#depth === cap.depth && (c === 0x2c || c === 0x7d)) this.#finish(cap);
    if (this.#awaitValue) {
      this.#awaitValue = false;
      this.#valueStarts(c);
    }
    if (this.#dataDepth > 0 && this.#depth === this.#dataDepth && c !== 0x5d && c !== 0x2c) {
      if (this.#dataExpect) this.#out.dataItems = (this.#out.dataItems ?? 0) + 1;
      this.#dataExpect = false;
    }
    if (this.#capture) this.#take(this.#capture, c);
    const inObject = this.#objects[this.#depth - 1] === true;
    switch (c) {
      case QUOTE:
        this.#inString = true;
        if (inObject && this.#expectKey) {
          this.#expectKey = false;
          if (this.#depth <= 2) {
            this.#keyAt = 0;
            this.#keyMatch = ALL_KEYS;
          }
        }
        return;
      case 0x7b: // {
      case 0x5b: // [
        this.#depth++;
        if (this.#depth <= 64) this.#objects[this.#depth - 1] = c === 0x7b;
        this.#expectKey = c === 0x7b;
        return;
      case 0x7d: // }
      case 0x5d: // ]
        if (this.#depth === this.#dataDepth) this.#dataDepth = 0;
        this.#depth = Math.max(0, this.#depth - 1);
        this.#expectKey = false;
        return;
      case 0x2c: // ,
        if (inObject) this.#expectKey = true;
        if (this.#depth === this.#dataDepth) this.#dataExpect = true;
        return;
      case 0x3a: // :
        if (inObject) this.#awaitValue = true;
        return;
    }
  }

  /** One more byte of the key being read: the keys of `KEYS` it differs from are out. */
  #keyByte(c: number): void {
    const at = this.#keyAt++;
    for (let k = 0; k < KEYS.length; k++)
      if (this.#keyMatch & (1 << k) && KEYS[k]?.charCodeAt(at) !== c) this.#keyMatch &= ~(1 << k);
  }

  /** The key just read: the one of `KEYS` it matched whole, or "". */
  #keyRead(): string {
    for (let k = 0; k < KEYS.length; k++) {
      const key = KEYS[k] as string;
      if (this.#keyMatch & (1 << k) && key.length === this.#keyAt) return key;
    }
    return "";
  }

  /** A value begins at the current depth, after the key last read there. */
  #valueStarts(c: number): void {
    const d = this.#depth;
    const key = this.#keys[d] ?? "";
    if ((key === "usage" && d <= 2 && c === 0x7b) || (key === "duration" && d === 1))
      this.#capture = { depth: d, key, buf: Buffer.allocUnsafe(256), length: 0 };
    else if (key === "data" && d === 1 && c === 0x5b) {
      this.#dataDepth = 2;
      this.#dataExpect = true;
      this.#out.dataItems = 0;
    }
  }

  #take(cap: Capture, c: number): void {
    if (cap.length === cap.buf.length) {
      if (cap.length >= MAX_CAPTURE) {
        this.#capture = undefined;
        return;
      }
      const bigger = Buffer.allocUnsafe(cap.length * 2);
      cap.buf.copy(bigger);
      cap.buf = bigger;
    }
    cap.buf[cap.length++] = c;
  }

  #finish(cap: Capture): void {
    this.#capture = undefined;
    const text = cap.buf.toString("utf8", 0, cap.length);
    if (cap.key === "duration") {
      const n = Number(text);
      if (Number.isFinite(n) && n >= 0) this.#out.duration = n;
      return;
    }
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === "object" && value !== null && !Array.isArray(value))
        this.#out.usage = value as Record<string, unknown>;
    } catch {
      // A value cut short or not JSON: nothing counted from it.
    }
  }
}
