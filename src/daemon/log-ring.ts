/**
 * The daemon's last log lines, for the rig page's live log tail. The logger writes each JSON
 * line here as well as to its destination (after redaction, so no key is kept). Bounded: at
 * most `capacity` lines of at most `MAX_RAW_CHARS` characters each.
 *
 * A line is kept as written and parsed only when someone reads it (`list`, a `line` listener):
 * the daemon logs a line per request, and the page reads the tail rarely, so parsing each one
 * on the way in cost a JSON.parse per request (about 1.5 % of the daemon's CPU on small ones).
 */
import { EventEmitter } from "node:events";
import type { RigLogLine } from "../ui/browser/rig-types.ts";

const MAX_LINE_CHARS = 2000;
/** A longer line is parsed (and cut) at once, so that the ring never holds much more. */
const MAX_RAW_CHARS = 16 * 1024;

/** A line as written, with when it came (for a line that is not JSON). */
interface RawLine {
  raw: string;
  at: number;
}
const LEVELS: Record<number, string> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};

/**
 * Events: `line` (a RigLogLine), for live viewers.
 * @example
 * const ring = new LogRing(200);
 * const log = createLogger({ tee: ring });
 */
export class LogRing extends EventEmitter<{ line: [RigLogLine] }> {
  readonly #lines: (RigLogLine | RawLine)[] = [];

  constructor(readonly capacity = 200) {
    super();
  }

  /** Takes one serialized pino line (a stream's `write`). */
  write(chunk: string | Buffer): boolean {
    for (const text of chunk.toString().split("\n")) {
      if (text.trim() === "") continue;
      if (text.length > MAX_RAW_CHARS || this.listenerCount("line") > 0)
        this.add(parseLine(text, Date.now()));
      else this.#push({ raw: text, at: Date.now() });
    }
    return true;
  }

  add(line: RigLogLine): void {
    this.#push(line);
    this.emit("line", line);
  }

  list(): RigLogLine[] {
    return this.#lines.map((line, i) => {
      if (!("raw" in line)) return line;
      const parsed = parseLine(line.raw, line.at);
      this.#lines[i] = parsed;
      return parsed;
    });
  }

  #push(line: RigLogLine | RawLine): void {
    this.#lines.push(line);
    if (this.#lines.length > this.capacity) this.#lines.shift();
  }
}

function parseLine(text: string, at: number): RigLogLine {
  try {
    const entry = JSON.parse(text) as { time?: unknown; level?: unknown; msg?: unknown };
    const msg = typeof entry.msg === "string" ? entry.msg : text;
    return {
      time: typeof entry.time === "number" ? entry.time : at,
      level: (typeof entry.level === "number" ? LEVELS[entry.level] : undefined) ?? "info",
      msg: msg.slice(0, MAX_LINE_CHARS),
    };
  } catch {
    return { time: at, level: "info", msg: text.slice(0, MAX_LINE_CHARS) };
  }
}
