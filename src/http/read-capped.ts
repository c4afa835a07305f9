/**
 * Reading an engine's reply whole, up to a limit. Apart from `body.ts` so that the adapters,
 * which need only this, do not load the request side (`node:http2`, meters) with it.
 */
import { finished, type Readable } from "node:stream";

/**
 * An engine's reply (or any stream) read whole, up to `limit` bytes; undefined, with the stream
 * destroyed, when it is longer. Rejects with the stream's error, or when it closes before its end.
 * Events, not `for await`: the async iterator cost about 2 KiB of garbage per small answer.
 */
export function readCapped(body: Readable, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const take = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        body.off("data", take);
        resolve(undefined);
        body.destroy();
        return;
      }
      chunks.push(chunk);
    };
    body.on("data", take);
    finished(body, (err) => {
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    });
  });
}
