/**
 * Reading usage from an SSE answer as it passes, event by event, line by line: each event's
 * `data:` lines go through a `JsonScanner` (nothing of them is kept), and the usage any event
 * carries is kept. When the relay itself asked the engine for usage
 * (`stream_options.include_usage`) and the consumer did not, the extra final chunk that carries
 * it (`"choices": []` with `usage`) is taken out, so the consumer sees what it would have seen
 * without the relay's question. Only that one event is ever held, at most `MAX_HELD` bytes.
 */
import { JsonScanner } from "./usage-scan.ts";

/** Most bytes of one event held back to decide whether it is the usage-only chunk. */
export const MAX_HELD = 64 * 1024;
const LF = 0x0a;
const CR = 0x0d;
const DATA = Buffer.from("data:");

/** Tokens an engine reported, either naming (`prompt_tokens` or `input_tokens`). */
export interface Tokens {
  prompt?: number;
  completion?: number;
}

const count = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;

/** Adds what one `usage` object says to `into`; a later report replaces an earlier one. */
export function mergeTokens(into: Tokens, usage: Record<string, unknown> | undefined): void {
  if (!usage) return;
  const prompt = count(usage.prompt_tokens) ?? count(usage.input_tokens);
  const completion = count(usage.completion_tokens) ?? count(usage.output_tokens);
  if (prompt !== undefined) into.prompt = prompt;
  if (completion !== undefined) into.completion = completion;
}

/** Whether an event (its whole text) is the usage-only final chunk (`choices: []`, `usage`). */
function usageOnly(event: Buffer): boolean {
  const data = event
    .toString("utf8")
    .split(/\r?\n/)
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5))
    .join("\n");
  if (data.trim() === "") return false;
  try {
    const v = JSON.parse(data) as { choices?: unknown; usage?: unknown };
    return Array.isArray(v.choices) && v.choices.length === 0 && typeof v.usage === "object";
  } catch {
    return false;
  }
}

/**
 * One SSE answer's reader; `push` each chunk and pass on what it returns, then `end()`.
 * @example
 * const sse = new SseUsage({ strip: true });
 * res.write(sse.push(chunk));
 */
export class SseUsage {
  readonly tokens: Tokens = {};
  readonly #strip: boolean;
  #scan = new JsonScanner();
  /** Bytes of the line so far (0: at a line's start), and whether it is a `data:` line. */
  #lineLength = 0;
  #data = false;
  #dataSeen = false;
  /** Bytes of the event held back (strip mode), and whether it was let go already. */
  #held: Buffer[] = [];
  #heldBytes = 0;
  #released = false;

  constructor(o: { strip: boolean }) {
    this.#strip = o.strip;
  }

  /** Reads a chunk; returns what goes on to the consumer now. */
  push(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let from = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] ?? 0;
      if (c === LF) {
        if (this.#lineLength === 0) {
          this.#eventEnds(chunk, from, i + 1, out);
          from = i + 1;
        }
        this.#lineLength = 0;
        this.#data = false;
        continue;
      }
      if (c === CR) continue;
      if (this.#lineLength < DATA.length) {
        if (c !== DATA[this.#lineLength]) this.#lineLength = DATA.length + 1;
        else if (++this.#lineLength === DATA.length) {
          this.#data = true;
          // Lines of one event's data are joined with a newline (JSON whitespace).
          if (this.#dataSeen) this.#scan.byte(LF);
          this.#dataSeen = true;
        }
        continue;
      }
      // Past a line's first bytes only its end matters here: the rest of a `data:` line goes to
      // the scanner in one piece (which jumps over strings), any other line is skipped.
      const lf = chunk.indexOf(LF, i);
      const end = lf === -1 ? chunk.length : lf;
      if (this.#data) this.#scan.feed(chunk.subarray(i, end));
      this.#lineLength += end - i;
      i = end - 1;
    }
    if (!this.#strip) return chunk;
    this.#hold(chunk.subarray(from), out);
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
  }

  /** What is still held when the answer ends (an event with no blank line after it). */
  end(): Buffer {
    mergeTokens(this.tokens, this.#scan.result().usage);
    const rest = Buffer.concat(this.#held);
    this.#held = [];
    return rest;
  }

  #hold(part: Buffer, out: Buffer[]): void {
    if (part.length === 0) return;
    if (this.#released) {
      out.push(part);
      return;
    }
    this.#held.push(part);
    this.#heldBytes += part.length;
    if (this.#heldBytes > MAX_HELD) {
      // Too big to be the usage chunk: it goes on as it comes.
      out.push(...this.#held);
      this.#held = [];
      this.#released = true;
    }
  }

  #eventEnds(chunk: Buffer, from: number, to: number, out: Buffer[]): void {
    mergeTokens(this.tokens, this.#scan.result().usage);
    this.#scan = new JsonScanner();
    this.#dataSeen = false;
    if (this.#strip) {
      this.#hold(chunk.subarray(from, to), out);
      if (!this.#released && !usageOnly(Buffer.concat(this.#held))) out.push(...this.#held);
      this.#held = [];
      this.#heldBytes = 0;
      this.#released = false;
    }
  }
}
