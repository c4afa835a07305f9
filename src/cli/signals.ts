/**
 * Signal handling for the long-running commands: the first SIGTERM/SIGINT stops gracefully,
 * a second one exits at once.
 */
import type { Logger } from "../log.ts";

export function onShutdown(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn("%s again: exiting now", signal);
      process.exit(1);
    }
    stopping = true;
    log.info("%s: shutting down (send it again to exit at once)", signal);
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: String(err) }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  // conf's atomic writes (atomically → when-exit) hook these signals at import and re-raise
  // them at the process itself, which would read as the "second signal" and cut the drain short.
  // Its 'exit' hook still cleans up; ours are the only signal handlers.
  process.removeAllListeners("SIGTERM");
  process.removeAllListeners("SIGINT");
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
}

/** Exit status for a fault that escaped every handler (EX_SOFTWARE). */
export const FAULT_EXIT_CODE = 70;

/**
 * A fault that escaped every request and message handler may have left shared state half
 * changed, so the process does not go on: it logs what happened and exits 70 for its
 * supervisor (systemd's `Restart=on-failure`) to start a clean one. Faults inside a request or
 * a tunnel message are caught nearer, answered, and never reach here.
 */
export function exitOnFault(log: Logger): void {
  const fatal = (err: unknown, kind: string): void => {
    log.fatal(
      { err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) },
      "%s: %s; exiting (status %d) so the supervisor starts a clean process",
      kind,
      err instanceof Error ? err.message : String(err),
      FAULT_EXIT_CODE,
    );
    process.exit(FAULT_EXIT_CODE);
  };
  process.on("uncaughtException", (err) => fatal(err, "uncaught exception"));
  process.on("unhandledRejection", (err) => fatal(err, "unhandled promise rejection"));
}
