/**
 * Logging: pino, JSON when stdout is not a terminal (systemd, files), readable lines when it is.
 * Secrets are redacted by path wherever they could appear.
 */
import { createRequire } from "node:module";
import { pino, type Logger } from "pino";
import type prettyFactory from "pino-pretty";

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
  // Synchronous writes: an asynchronous one goes through libuv's thread pool, which costs the
  // event loop several times what the write itself does (a line per request adds up).
  return pino(
    { level, redact },
    withTee(options.destination ?? pino.destination({ dest: 1, sync: true }), options.tee),
  );
}

function withTee(
  destination: pino.DestinationStream,
  tee: LogOptions["tee"],
): pino.DestinationStream {
  if (!tee) return destination;
  // Every level: the logger itself decides what is written.
  return pino.multistream([
    { level: "trace", stream: destination },
    { level: "trace", stream: tee },
  ]);
}

/** A logger that drops everything, for library use without a logger. */
export const silentLogger: Logger = pino({ level: "silent" });
