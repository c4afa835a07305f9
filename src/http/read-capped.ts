/**
 * Reading an engine's reply whole, up to a limit. Apart from `body.ts` so that the adapters,
 * which need only this, do not load the request side (`node:http2`, meters) with it.
 */
import type { Readable } from "node:stream";

/**
 * An engine's reply (or any stream) read whole, up to `limit` bytes; undefined, with the stream
 * destroyed, when it is longer.
 */
export async function readCapped(body: Readable, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}
