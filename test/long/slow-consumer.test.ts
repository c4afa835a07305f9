/**
 * A slow consumer reads a 100 MiB answer at 1 MiB/s (about 100 s) through the relay and the
 * daemon: flow control holds the engine back, neither process buffers the body, and every byte
 * arrives, in order. A consumer that stops reading holds the processes' memory as low.
 * (test/e2e/faults.test.ts has the quick version of the second, bounding the engine's bytes only:
 * memory figures are for this tier, where nothing else runs beside them.)
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { afterAll, expect, it } from "vitest";
import { BulkEngine } from "../fakes/bulk-engine.ts";
import { bulkRequest, stopThenDrain } from "../e2e/bulk-consumer.ts";
import { startStack, type Stack } from "../e2e/stack.ts";

const MiB = 1024 * 1024;
const TOTAL = 100 * MiB;
const RATE = MiB; // bytes per second

const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A bulk engine of `total` bytes and a stack serving it, stopped after the file. */
async function bulkStack(total: number): Promise<{ engine: BulkEngine; stack: Stack }> {
  const engine = new BulkEngine(total);
  const url = await engine.start();
  cleanup.push(() => engine.stop());
  const stack = await startStack([url]);
  cleanup.push(() => stack.stop());
  return { engine, stack };
}

/** Resident memory of a process, in MiB, from /proc. */
function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) / 1024;
}

it("streams 100 MiB to a consumer reading 1 MiB/s with daemon and relay memory bounded", async () => {
  const { engine, stack } = await bulkStack(TOTAL);
  const processes = { daemon: stack.daemon.child.pid!, relay: stack.relay.child.pid! };
  const before = { daemon: rssMiB(processes.daemon), relay: rssMiB(processes.relay) };
  const peak = { ...before };
  let received = 0;
  let ahead = 0; // the most the engine was ever ahead of the consumer
  const sample = (): void => {
    for (const name of ["daemon", "relay"] as const)
      peak[name] = Math.max(peak[name], rssMiB(processes[name]));
    ahead = Math.max(ahead, engine.produced - received);
  };
  const sampler = setInterval(sample, 250);

  try {
    const res = await bulkRequest(stack.relayUrl);
    const hash = createHash("sha256");
    const started = performance.now();
    // Read a chunk, then pause until 1 MiB/s is the average again.
    res.on("data", (chunk: Buffer) => {
      received += chunk.length;
      hash.update(chunk);
      const wait = started + (received / RATE) * 1000 - performance.now();
      if (wait <= 0) return;
      res.pause();
      setTimeout(() => res.resume(), wait);
    });
    await once(res, "end");
    sample();

    expect(received).toBe(TOTAL);
    expect(hash.digest("hex")).toBe(engine.digest());
    // Bounded by the windows (4 MiB per stream, 32 MiB per tunnel) plus socket buffers.
    expect(ahead).toBeLessThan(48 * MiB);
    expect(peak.daemon - before.daemon).toBeLessThan(64);
    expect(peak.relay - before.relay).toBeLessThan(64);
    console.log(
      `slow consumer: ${(performance.now() - started) / 1000} s; peak growth daemon +${(peak.daemon - before.daemon).toFixed(1)} MiB, relay +${(peak.relay - before.relay).toFixed(1)} MiB; engine at most ${(ahead / MiB).toFixed(1)} MiB ahead`,
    );
  } finally {
    clearInterval(sampler);
  }
});

it("holds daemon and relay memory while a consumer of 100 MiB stops reading", async () => {
  const { engine, stack } = await bulkStack(TOTAL);
  const pids = [stack.daemon.child.pid!, stack.relay.child.pid!];
  const before = pids.map(rssMiB);
  const res = await bulkRequest(stack.relayUrl);
  const received = await stopThenDrain(res, engine, () => {
    const growth = pids.map((pid, i) => rssMiB(pid) - before[i]!);
    console.log(
      `stopped consumer: daemon +${growth[0]!.toFixed(1)} MiB, relay +${growth[1]!.toFixed(1)} MiB; engine ${(engine.produced / MiB).toFixed(1)} MiB ahead`,
    );
    for (const mb of growth) expect(mb).toBeLessThan(64);
  });
  expect(received).toBe(TOTAL);
});
