/**
 * A consumer of the bulk engine's answer (test/fakes/bulk-engine.ts) through a stack's relay,
 * over node:http rather than fetch: a paused IncomingMessage stops reading its socket, as a slow
 * client does. Shared by the quick stopped-consumer test and the long tier's.
 */
import { once } from "node:events";
import http from "node:http";
import { expect } from "vitest";
import type { BulkEngine } from "../fakes/bulk-engine.ts";
import { ALICE_KEY } from "./stack.ts";

/** `POST /v1/chat/completions` for the bulk model at `relayUrl`; resolves with the 200 response. */
export async function bulkRequest(relayUrl: string): Promise<http.IncomingMessage> {
  const req = http.request(`${relayUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${ALICE_KEY}`, "content-type": "application/json" },
  });
  req.end(JSON.stringify({ model: "bulk", messages: [] }));
  const [res] = (await once(req, "response")) as [http.IncomingMessage];
  expect(res.statusCode).toBe(200);
  return res;
}

/**
 * Reads the first chunk of `res`, then stops reading until the engine has stalled (nothing more
 * produced between two looks 300 ms apart); calls `whileStalled`, then reads the rest and
 * resolves with the bytes received in all.
 */
export async function stopThenDrain(
  res: http.IncomingMessage,
  engine: BulkEngine,
  whileStalled: () => void,
): Promise<number> {
  let received = 0;
  res.once("data", (chunk: Buffer) => {
    received += chunk.length;
    res.pause();
  });
  let last = -1;
  await expect
    .poll(
      () => {
        const stalled = engine.produced === last;
        last = engine.produced;
        return stalled;
      },
      { timeout: 20_000, interval: 300 },
    )
    .toBe(true);
  whileStalled();
  res.on("data", (chunk: Buffer) => (received += chunk.length));
  res.resume();
  await once(res, "end");
  return received;
}
