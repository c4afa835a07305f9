/**
 * Where the CLI finds the running daemon: the loopback status server's port, from
 * `--status-port`, `CLUB_STATUS_PORT` or the stored settings (default 8790).
 */
import { openStore, resolveConfig } from "../config.ts";
import { UserError } from "../errors.ts";

/** The status port to reach the daemon on; a UserError when the status server is turned off. */
export function daemonPort(statusPortFlag: string | undefined): number {
  const config = resolveConfig(
    openStore().store,
    process.env,
    statusPortFlag ? { statusPort: statusPortFlag } : {},
  );
  if (config.statusPort === 0)
    throw new UserError(
      "status_off",
      "the status server is turned off (status port 0): pass the daemon's port with --status-port",
    );
  return config.statusPort;
}

/** Nothing answers on `port`. */
export const noDaemon = (port: number): UserError =>
  new UserError(
    "no_daemon",
    `no daemon answers on 127.0.0.1:${port}. Start one (\`club-provider start\`), or pass the port it uses with --status-port.`,
  );
