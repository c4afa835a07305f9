/**
 * A throwaway PostgreSQL cluster for the PostgreSQL tier (`npm run test:pg`): `initdb` and
 * `pg_ctl` from the machine's PostgreSQL (Debian's `postgresql` package) into a temporary
 * directory, listening on a free loopback port only, trusted local auth, stopped and deleted at
 * the end. As root (PostgreSQL refuses to run as root) it runs as the `postgres` user.
 *
 * `CLUB_TEST_PG_URL` points the tier at a server you already run instead.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** A running cluster: its connection URL (database `postgres`, superuser `club`) and a stop. */
export interface Cluster {
  url: string;
  /** Stops the server for good and deletes the cluster. */
  stop(): void;
  /** Stops the server (fast shutdown: open connections are cut), keeping the cluster. */
  halt(): void;
  /** Starts a halted server again on the same port. */
  resume(): void;
}

/** The directory holding `initdb` and `pg_ctl`, or undefined when PostgreSQL is not installed. */
export function findPostgresBin(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, "bin", "pg_ctl")))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], "bin");
  }
  try {
    const pgCtl = execFileSync("sh", ["-c", "command -v pg_ctl"], { encoding: "utf8" }).trim();
    return pgCtl ? dirname(pgCtl) : undefined;
  } catch {
    return undefined;
  }
}

/** A loopback port nothing listens on now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** Starts a fresh cluster; throws with the tool's output when it cannot. */
export async function startCluster(bin: string): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), "club-pg-"));
  const data = join(dir, "data");
  const asRoot = process.getuid?.() === 0;
  chmodSync(dir, 0o755);
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }));
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }));
    chownSync(dir, uid, gid);
  }
  const run = (tool: string, args: string[]): void => {
    const command = asRoot ? "runuser" : join(bin, tool);
    const argv = asRoot ? ["-u", "postgres", "--", join(bin, tool), ...args] : args;
    execFileSync(command, argv, { stdio: ["ignore", "pipe", "pipe"], cwd: dir });
  };
  const port = await freePort();
  run("initdb", ["-D", data, "-U", "club", "-A", "trust", "--no-sync", "-E", "UTF8"]);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300`;
  const start = (): void =>
    run("pg_ctl", ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "start"]);
  start();
  return {
    url: `postgres://club@127.0.0.1:${port}/postgres`,
    halt: () => run("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]),
    resume: start,
    stop() {
      try {
        run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
