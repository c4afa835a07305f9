/** One relay per data directory: a lock file holding the owner's process id. */
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "../../errors.ts";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes `<dir>/relay.lock`, replacing a stale one (its process is gone, e.g. after a crash), and
 * resolves to the function that releases it. Throws a `UserError` when a live relay holds it.
 */
export async function lockDir(dir: string): Promise<() => Promise<void>> {
  const file = join(dir, "relay.lock");
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
      return () => rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw err;
    }
    const pid = Number((await readFile(file, "utf8").catch(() => "")).trim());
    if (Number.isInteger(pid) && pid > 0 && (pid === process.pid || alive(pid)))
      throw new UserError(
        "data_dir_locked",
        `another relay (pid ${pid}) is using the data directory ${dir}: stop it, or give this relay its own --data-dir`,
      );
    await rm(file, { force: true });
  }
}
