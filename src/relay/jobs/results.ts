/** Byte results on disk: `<resultsDir>/<job id>`, written as `<job id>.part` until complete. */
import { createReadStream, type ReadStream } from "node:fs";
import { open, readFile, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";

/** Paths of one job's result. Job ids are `job_` plus hex, so they are safe file names. */
export function resultPaths(dir: string, jobId: string): { part: string; final: string } {
  return { part: join(dir, `${jobId}.part`), final: join(dir, jobId) };
}

/**
 * Makes a complete part file the job's result: synced to disk, renamed, the rename synced, so
 * a job saved PROCESSED (after this) never points at a file a power cut took.
 */
export async function commitResult(dir: string, jobId: string): Promise<void> {
  const { part, final } = resultPaths(dir, jobId);
  const fh = await open(part, "r+");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(part, final);
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * At start, before any attempt: removes part files (their attempts are gone) and results whose
 * job is not stored (a crash between deleting the row and the file). Resolves to how many.
 */
export async function sweepResults(dir: string, jobIds: Set<string>): Promise<number> {
  const stale = (await readdir(dir)).filter((name) => name.endsWith(".part") || !jobIds.has(name));
  await Promise.all(stale.map((name) => rm(join(dir, name), { force: true })));
  return stale.length;
}

/** Forgets a job's result and any partial one. */
export async function dropResult(dir: string, jobId: string): Promise<void> {
  const { part, final } = resultPaths(dir, jobId);
  await Promise.all([rm(part, { force: true }), rm(final, { force: true })]);
}

/** The whole part file as JSON, or undefined when it is not JSON. */
export async function readPartJson(
  dir: string,
  jobId: string,
): Promise<{ value: unknown } | undefined> {
  try {
    return { value: JSON.parse(await readFile(resultPaths(dir, jobId).part, "utf8")) as unknown };
  } catch {
    return undefined;
  }
}

/** The first `limit` bytes of the part file as text: enough to read a provider's error. */
export async function readPartHead(dir: string, jobId: string, limit = 64 * 1024): Promise<string> {
  const fh = await open(resultPaths(dir, jobId).part, "r").catch(() => undefined);
  if (!fh) return "";
  try {
    const buf = Buffer.alloc(limit);
    const { bytesRead } = await fh.read(buf, 0, limit, 0);
    return buf.subarray(0, bytesRead).toString("utf8");
  } finally {
    await fh.close();
  }
}

/** A stream of a committed result, opened before it resolves (so a missing file rejects). */
export function openResult(dir: string, jobId: string): Promise<ReadStream> {
  const stream = createReadStream(resultPaths(dir, jobId).final);
  return new Promise((resolve, reject) => {
    stream.once("open", () => resolve(stream));
    stream.once("error", reject);
  });
}
