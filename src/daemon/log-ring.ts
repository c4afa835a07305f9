/**
 * The daemon's last log lines, for the rig page's live log tail. The logger writes each JSON
 * line here as well as to its destination (after redaction, so no key is kept). Bounded: at
 * most `capacity` lines of at most `MAX_LINE_CHARS` characters each.
 */
import { EventEmitter } from "node:events";
import type { RigLogLine } from "../ui/browser/rig-types.ts";

const MAX_LINE_CHARS = 2000;
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
  readonly #lines: RigLogLine[] = [];

  constructor(readonly capacity = 200) {
    super();
  }

  /** Takes one serialized pino line (a stream's `write`). */
  write(chunk: string | Buffer): boolean {
    for (const text of chunk.toString().split("\n")) {
      if (text.trim() === "") continue;
      this.add(parseLine(text));
    }
    return true;
  }

  add(line: RigLogLine): void {
    this.#lines.push(line);
    if (this.#lines.length > this.capacity) this.#lines.shift();
    this.emit("line", line);
  }

  list(): RigLogLine[] {
    return [...this.#lines];
  }
}

function parseLine(text: string): RigLogLine {
  try {
    const entry = JSON.parse(text) as { time?: unknown; level?: unknown; msg?: unknown };
    const msg = typeof entry.msg === "string" ? entry.msg : text;
    return {
      time: typeof entry.time === "number" ? entry.time : Date.now(),
      level: (typeof entry.level === "number" ? LEVELS[entry.level] : undefined) ?? "info",
      msg: msg.slice(0, MAX_LINE_CHARS),
    };
  } catch {
    return { time: Date.now(), level: "info", msg: text.slice(0, MAX_LINE_CHARS) };
  }
}
