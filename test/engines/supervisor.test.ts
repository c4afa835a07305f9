import { once } from "node:events";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EngineUnavailable } from "../../src/engines/errors.ts";
import type { Supervisor } from "../../src/engines/supervisor.ts";
import { alive, fakeSpec, supervisor, until, SETTINGS } from "./helpers.ts";

const running: Supervisor[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop("shutdown")));
});
function track(s: Supervisor): Supervisor {
  running.push(s);
  return s;
}
const signal = (): AbortSignal => new AbortController().signal;

async function chat(s: Supervisor): Promise<number> {
  const res = await fetch(`${s.upstream.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: s.models[0]?.servedId,
      messages: [{ role: "user", content: "hi" }],
    }),
  }).catch(() => null);
  await res?.text();
  return res?.status ?? 0;
}

describe("a managed engine's supervisor", () => {
  it("starts a slow engine once for concurrent cold requests, and leases it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "engines-"));
    const starts = join(dir, "starts");
    const s = track(supervisor(fakeSpec("slow", ["--load-ms", "1500", "--starts-file", starts])));
    const states: string[] = [];
    s.on("change", () => states.push(s.state));
    const leases = await Promise.all(Array.from({ length: 5 }, () => s.acquire(signal(), 30_000)));
    expect(s.state).toBe("ready");
    expect(s.starts).toBe(1);
    expect(readFileSync(starts, "utf8").trim().split("\n")).toHaveLength(1);
    expect(states).toEqual(["starting", "ready"]);
    expect(s.inFlight).toBe(5);
    expect(await chat(s)).toBe(200);
    for (const release of leases) release();
    expect(s.inFlight).toBe(0);
    expect(s.coldStarts).toHaveLength(1);
    // Health went OK only after the 503s of loading: the engine's log says it loaded.
    expect(s.logs.lines().join("\n")).toContain("model loaded");
  });

  it("gives a start that fails 503 with the engine's words, backs off, and withdraws it", async () => {
    const s = track(supervisor(fakeSpec("broken", ["--fail-start"])));
    for (let i = 1; i <= SETTINGS.maxFailures; i++) {
      const err = await s.acquire(signal(), 30_000).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineUnavailable);
      expect((err as Error).message).toMatch(
        /failed to start: it ended during start \(exit code 1\).*fake refuses to start/,
      );
      expect(s.state).toBe("failed");
      expect(s.failures).toBe(i);
    }
    expect(s.withdrawn).toBe(true);
    const err = (await s.acquire(signal(), 30_000).catch((e: unknown) => e)) as EngineUnavailable;
    expect(err.code).toBe("engine_withdrawn");
    expect(err.retryAfter).toBe(60);
    expect(s.starts).toBe(SETTINGS.maxFailures);
    // The owner's start is a fresh try (and fails again, here).
    await expect(s.start()).rejects.toThrow(/failed to start/);
    expect(s.starts).toBe(SETTINGS.maxFailures + 1);
    expect(s.withdrawn).toBe(false);
  });

  it("notices a crash at once and starts the engine again on the next request", async () => {
    const s = track(supervisor(fakeSpec("crashy", ["--crash-after", "2"])));
    const release = await s.acquire(signal(), 30_000);
    expect(await chat(s)).toBe(200);
    expect(await chat(s)).toBe(200);
    const pid = s.pid!;
    const crashed = once(s, "crash");
    expect(await chat(s)).toBe(0); // the connection broke off: the gateway's 502
    await crashed;
    release();
    expect(s.state).toBe("failed");
    expect(s.reason).toMatch(/crashed \(killed by SIGKILL\).*crashing on request 3/);
    await until(() => !alive(-pid));
    const again = await s.acquire(signal(), 30_000);
    expect(s.state).toBe("ready");
    expect(s.starts).toBe(2);
    expect(await chat(s)).toBe(200);
    again();
  });

  it("stops an idle engine after its idle time, and the process group is gone", async () => {
    const s = track(supervisor(fakeSpec("idle", ["--child"], { idleMs: 300 })));
    const release = await s.acquire(signal(), 30_000);
    const pid = s.pid!;
    const worker = Number(/worker pid (\d+)/.exec(s.logs.lines().join("\n"))?.[1]);
    expect(alive(worker)).toBe(true);
    const stopped = once(s, "stopped");
    release();
    expect(await stopped).toEqual(["idle"]);
    expect(s.state).toBe("stopped");
    expect(s.stops.idle).toBe(1);
    await until(() => !alive(-pid));
    await until(() => !alive(worker));
  });

  it("stops with SIGTERM, then SIGKILL of the group when the engine ignores it", async () => {
    const s = track(
      supervisor(fakeSpec("stubborn", ["--ignore-term"]), {
        settings: { ...SETTINGS, stopMs: 300 },
      }),
    );
    await s.start();
    const pid = s.pid!;
    await s.stop("owner");
    expect(s.logs.lines().join("\n")).toMatch(
      /ignoring SIGTERM[\s\S]*stopped, owner: killed by SIGKILL/,
    );
    await until(() => !alive(-pid));
    expect(s.stops.owner).toBe(1);
  });

  it("gives up waiting within the limit with 503, and keeps starting for the next request", async () => {
    const s = track(supervisor(fakeSpec("slower", ["--load-ms", "2000"])));
    const err = (await s.acquire(signal(), 100).catch((e: unknown) => e)) as EngineUnavailable;
    expect(err.code).toBe("engine_starting");
    expect(err.retryAfter).toBeGreaterThanOrEqual(1);
    expect(s.state).toBe("starting");
    (await s.acquire(signal(), 30_000))();
    expect(s.starts).toBe(1);
  });

  it("lets a waiting caller leave without stopping the start", async () => {
    const s = track(supervisor(fakeSpec("leaver", ["--load-ms", "1000"])));
    const ctl = new AbortController();
    const waiting = s.acquire(ctl.signal, 30_000);
    ctl.abort(new Error("caller left"));
    await expect(waiting).rejects.toThrow("caller left");
    await once(s, "ready");
    expect(s.inFlight).toBe(0);
  });

  it("stops an engine that is still starting when its owner says so", async () => {
    const s = track(supervisor(fakeSpec("halted", ["--load-ms", "60000"])));
    const starting = s.start();
    await until(() => s.pid !== null);
    const pid = s.pid!;
    await s.stop("owner");
    await expect(starting).rejects.toThrow(/stopped \(owner\) while starting/);
    expect(s.state).toBe("stopped");
    expect(alive(-pid)).toBe(false);
  });
});
