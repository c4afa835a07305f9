/**
 * Logging: pino, JSON when stdout is not a terminal (systemd, files), readable lines when it is.
 * Secrets are redacted by path wherever they could appear.
 */
import { createRequire } from "node:module";
import { pino, type Logger } from "pino";
import type prettyFactory from "pino-pretty";
import { wholeNumberSetting } from "./env-number.ts";

export type { Logger };

const require = createRequire(import.meta.url);

/** Paths pino blanks out; keys and bearer headers never reach a log line. */
export const REDACT_PATHS = [
  "apiKey",
  "api_key",
  "key",
  "*.apiKey",
  "*.api_key",
  "*.key",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "config.apiKey",
  "config.services[*].apiKey",
];

export interface LogOptions {
  level?: string;
  /** Force JSON or pretty output; defaults to pretty on a TTY. */
  format?: "json" | "pretty";
  /** Write somewhere other than stdout (tests). */
  destination?: NodeJS.WritableStream;
  /** Also hand each (redacted) JSON line to this, e.g. the rig page's log tail. */
  tee?: { write(line: string): boolean };
}

export function createLogger(options: LogOptions = {}): Logger {
  const level = options.level ?? process.env.CLUB_LOG_LEVEL ?? "info";
  const format =
    options.format ??
    (process.env.CLUB_LOG_FORMAT === "json" || process.env.CLUB_LOG_FORMAT === "pretty"
      ? process.env.CLUB_LOG_FORMAT
      : process.stdout.isTTY
        ? "pretty"
        : "json");
  const redact = { paths: REDACT_PATHS, censor: "[redacted]" };
  if (format === "pretty") {
    // Loaded only for a terminal: a service logging JSON never holds pino-pretty's code.
    const pretty = require("pino-pretty") as typeof prettyFactory;
    const stream = pretty({
      colorize: process.stdout.isTTY,
      translateTime: "HH:MM:ss.l",
      ignore: "pid,hostname",
      singleLine: true,
      destination: options.destination ?? 1,
      sync: true,
    });
    return pino({ level, redact }, withTee(stream, options.tee));
  }
  return pino(
    { level, redact },
    withTee(
      options.destination ?? new BatchedLines(logFlushMs(process.env.CLUB_LOG_FLUSH_MS)),
      options.tee,
    ),
  );
}

/** How long a JSON line may wait to be written with the lines after it, unless set. */
export const DEFAULT_LOG_FLUSH_MS = 100;
/** Lines are written once this many bytes wait, whatever the time. */
const LOG_BATCH_BYTES = 4096;

/** `CLUB_LOG_FLUSH_MS`: milliseconds from 0 (each line at once) to 10 000. */
export function logFlushMs(value: string | undefined): number {
  return wholeNumberSetting(value, {
    name: "CLUB_LOG_FLUSH_MS",
    code: "log_flush_invalid",
    fallback: DEFAULT_LOG_FLUSH_MS,
    min: 0,
    max: 10_000,
    range: "of milliseconds from 0 to 10000",
  });
}

/** Standard output, as pino writes it (sonic-boom). */
type Out = ReturnType<typeof pino.destination>;

/** Every batching destination of this process, written out when it exits, however it exits. */
const unwritten = new Set<BatchedLines>();
let exitHooked = false;

/**
 * Standard output in batches: a line waits until 4 KiB of lines wait or `flushMs` passed since
 * the first of them, so a busy relay makes one `write` for many requests instead of one each
 * (the syscall was about 3 % of each process's CPU per small request; BENCHMARKS.md). As
 * nginx's `access_log … buffer= flush=`. What waits is written on exit, even an exit by an
 * uncaught exception; only a process killed outright (SIGKILL, the OOM killer) loses it.
 * Writes stay synchronous: an asynchronous one goes through libuv's thread pool, which costs
 * the event loop several times what the write itself does.
 *
 * The lines wait here, in an array joined once per batch, not in sonic-boom's own buffer
 * (`minLength`): that one appends each line to a string and measures the string's UTF-8 length
 * every time, which flattens it, so each line cost a copy of all that waited before it (2.5 KiB
 * allocated per line of a 4 KiB batch, more than pino's formatting of the line).
 */
class BatchedLines implements pino.DestinationStream {
  readonly #out: Out = pino.destination({ dest: 1, sync: true });
  readonly #flushMs: number;
  #lines: string[] = [];
  #length = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(flushMs: number) {
    this.#flushMs = flushMs;
    if (flushMs === 0) return;
    unwritten.add(this);
    if (!exitHooked) {
      exitHooked = true;
      process.on("exit", () => {
        for (const lines of unwritten) lines.flush();
      });
    }
  }

  write(line: string): void {
    if (this.#flushMs === 0) {
      this.#send(line);
      return;
    }
    this.#lines.push(line);
    // Characters, not bytes: a bound on the batch needs no exact size.
    this.#length += line.length;
    if (this.#length >= LOG_BATCH_BYTES) this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.flush();
      }, this.#flushMs);
      // A quiet process is not kept alive by a line waiting: the exit hook writes it.
      this.#timer.unref();
    }
  }

  /** Writes what waits now (pino's `logger.flush()`). */
  flush(callback?: (err?: Error) => void): void {
    if (this.#lines.length > 0) {
      const text = this.#lines.join("");
      this.#lines = [];
      this.#length = 0;
      this.#send(text);
    }
    callback?.();
  }

  #send(text: string): void {
    try {
      this.#out.write(text);
    } catch {
      // Standard output is gone (a closed pipe): there is nowhere to write the lines.
    }
  }
}

/** Each line to the destination and to the tee: every level, the logger decides what is written. */
function withTee(
  destination: pino.DestinationStream,
  tee: LogOptions["tee"],
): pino.DestinationStream {
  if (!tee) return destination;
  return {
    write(line: string) {
      destination.write(line);
      tee.write(line);
    },
    flush(callback?: (err?: Error) => void) {
      const flush = (destination as { flush?: (cb?: (err?: Error) => void) => void }).flush;
      if (flush) flush.call(destination, callback);
      else callback?.();
    },
  } as pino.DestinationStream;
}

/**
 * The fields of the one line each request leaves, at the relay and at the daemon. None of them
 * may hold a secret: the line is written without redaction (below), so a field added here is
 * added knowing that. A new field is a type error until it is named here.
 */
/** The status of a request whose response did not end (nginx's "client closed request"). */
export const ABORTED_STATUS = 499;

export interface RequestLine {
  requestId: string;
  model: string;
  endpoint: string;
  status: number;
  ms: number;
  /** The relay's: the member whose key asked, and the rig that answered. */
  member?: string;
  provider?: string;
  /** The daemon's: the local service and the answer's bytes. */
  service?: string;
  bytes?: number;
  /** A request whose caller left first (status {@link ABORTED_STATUS}), and the status it was sent. */
  aborted?: boolean;
  sent?: number | null;
}

/**
 * Writes the line per request, `"METHOD PATH STATUS"` with the fields, at `info`. Redaction by
 * path walks every wildcard path on every line, 4 µs of the 5 a line costs (measured with 200 000
 * lines), about 3 % of each process's CPU per small request; these fields need none.
 */
export function requestLines(log: Logger): (line: RequestLine, method: string) => void {
  const plain = log.child({}, { redact: [] });
  return (line, method) => plain.info(line, "%s %s %d", method, line.endpoint, line.status);
}

/** A logger that drops everything, for library use without a logger. */
export const silentLogger: Logger = pino({ level: "silent" });
