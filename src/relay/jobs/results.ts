/** Byte results on disk: `<resultsDir>/<job id>`, written as `<job id>.part` until complete. */
import { createReadStream, type ReadStream } from "node:fs";
import { open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";

/** Paths of one job's result. Job ids are `job_` plus hex, so they are safe file names. */
export function resultPaths(dir: string, jobId: string): { part: string; final: string } {
  return { part: join(dir, `${jobId}.part`), final: join(dir, jobId) };
}

/** Makes a complete part file the job's result. */
export async function commitResult(dir: string, jobId: string): Promise<void> {
  const { part, final } = resultPaths(dir, jobId);
  await rename(part, final);
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
