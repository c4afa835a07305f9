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
