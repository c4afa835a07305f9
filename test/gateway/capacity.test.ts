import { describe, expect, it } from "vitest";
import { Capacity, OWNER, type Release } from "../../src/gateway/capacity.ts";

const never = new AbortController().signal;

describe("Capacity", () => {
  it("runs up to maxConcurrent, queues the rest in order, and refuses past the queue", async () => {
    const cap = new Capacity({ queueSize: 2 });
    const svc = { name: "llm", maxConcurrent: 1 };
    const first = await cap.acquire(svc, never)!;
    const order: string[] = [];
    const second = cap.acquire(svc, never)!.then((r) => (order.push("second"), r));
    const third = cap.acquire(svc, never)!.then((r) => (order.push("third"), r));
    expect(cap.acquire(svc, never)).toBeNull();
    expect([cap.inFlight("llm"), cap.queued("llm"), cap.total, cap.totalQueued]).toEqual([
      1, 2, 1, 2,
    ]);
    first();
    const r2 = await second;
    expect(order).toEqual(["second"]);
    r2();
    (await third)();
    expect(order).toEqual(["second", "third"]);
    expect([cap.inFlight("llm"), cap.queued("llm"), cap.total]).toEqual([0, 0, 0]);
  });

  it("lets a request leave the queue when its consumer goes away", async () => {
    const cap = new Capacity();
    const svc = { name: "llm", maxConcurrent: 1 };
    const running = await cap.acquire(svc, never)!;
    const leaving = new AbortController();
    const waiting = cap.acquire(svc, leaving.signal)!;
    leaving.abort();
    await expect(waiting).rejects.toMatchObject({ name: "AbortError" }); // the signal's reason
    expect(cap.queued("llm")).toBe(0);
    running();
    expect(cap.inFlight("llm")).toBe(0);
  });

  it("makes services of one resource group share a limit", async () => {
    const cap = new Capacity({ groups: { gpu0: { maxConcurrent: 1 } } });
    const a = { name: "chat", maxConcurrent: 4, resourceGroup: "gpu0" };
    const b = { name: "images", maxConcurrent: 4, resourceGroup: "gpu0" };
    const ra = await cap.acquire(a, never)!;
    let granted: Release | undefined;
    const pending = cap.acquire(b, never)!.then((r) => (granted = r));
    await Promise.resolve();
    expect(granted).toBeUndefined();
    expect(cap.queued("images")).toBe(1);
    ra();
    await pending;
    expect(cap.inFlight("images")).toBe(1);
  });

  it("counts a release once however often it is called", async () => {
    const cap = new Capacity();
    const release = await cap.acquire({ name: "x", maxConcurrent: 2 }, never)!;
    release();
    release();
    expect(cap.total).toBe(0);
  });

  it("chooses, among services of one model, the first with a free slot, else the shortest queue", async () => {
    const cap = new Capacity({ queueSize: 4 });
    const a = { name: "gpu0-llm", maxConcurrent: 1 };
    const b = { name: "gpu1-llm", maxConcurrent: 1 };
    expect(cap.choose([a, b])).toBe(a);
    await cap.acquire(a, never);
    expect(cap.choose([a, b])).toBe(b);
    await cap.acquire(b, never);
    // Both busy: the queues decide, the first on a tie.
    expect(cap.choose([a, b])).toBe(a);
    void cap.acquire(a, never);
    expect(cap.choose([a, b])).toBe(b);
    expect(cap.choose([])).toBeUndefined();
  });

  it("suggests a Retry-After that grows with the queue", async () => {
    const cap = new Capacity({ queueSize: 10 });
    const svc = { name: "x", maxConcurrent: 1 };
    await cap.acquire(svc, never);
    expect(cap.retryAfter(svc)).toBe(1);
    for (let i = 0; i < 4; i++) void cap.acquire(svc, never);
    expect(cap.retryAfter(svc)).toBe(4);
  });

  describe("turns on a shared rig", () => {
    const svc = { name: "llm", maxConcurrent: 1 };
    const bob = { member: "bob", owner: false };
    const carol = { member: "carol", owner: false };

    /** Queues requests and records the order in which they get the one slot. */
    function recorder(cap: Capacity) {
      const order: string[] = [];
      const pending: Promise<void>[] = [];
      const add = (label: string, who: { member: string; owner: boolean }) => {
        const slot = cap.acquire(svc, never, who);
        if (!slot) throw new Error(`${label} refused`);
        pending.push(
          slot.then((release) => {
            order.push(label);
            // Served: the next one gets the slot on the next turn of the event loop.
            setImmediate(release);
          }),
        );
      };
      return { order, add, all: () => Promise.all(pending) };
    }

    it("serves a member's single request within the first turns of another's burst of 100", async () => {
      const cap = new Capacity({ queueSize: 100 });
      const running = await cap.acquire(svc, never, bob)!;
      const r = recorder(cap);
      for (let i = 0; i < 100; i++) r.add(`bob${i}`, bob);
      r.add("carol", carol);
      running();
      await r.all();
      expect(r.order.indexOf("carol")).toBe(1);
      expect(r.order).toHaveLength(101);
    });

    it("puts the owner's request ahead of every other member's", async () => {
      const cap = new Capacity({ queueSize: 50 });
      const running = await cap.acquire(svc, never, bob)!;
      const r = recorder(cap);
      for (let i = 0; i < 20; i++) r.add(`bob${i}`, bob);
      for (let i = 0; i < 20; i++) r.add(`carol${i}`, carol);
      r.add("owner", OWNER);
      running();
      await r.all();
      // It waited only for the request already running.
      expect(r.order[0]).toBe("owner");
      expect(r.order.slice(1, 5)).toEqual(["bob0", "carol0", "bob1", "carol1"]);
    });

    it("bounds each member's queue, and the group's, with 429 (null) past them", async () => {
      const cap = new Capacity({ queueSize: 2, queueTotal: 3 });
      const running = await cap.acquire(svc, never, bob)!;
      const waiting = [cap.acquire(svc, never, bob), cap.acquire(svc, never, bob)];
      expect(cap.acquire(svc, never, bob)).toBeNull();
      // Carol still has room of her own, until the group is full.
      waiting.push(cap.acquire(svc, never, carol));
      expect(waiting.every((w) => w !== null)).toBe(true);
      expect(cap.acquire(svc, never, carol)).toBeNull();
      expect(cap.acquire(svc, never, OWNER)).toBeNull();
      expect(cap.totalQueued).toBe(3);
      running();
      await Promise.all(waiting.map((w) => w!.then((release) => release())));
      expect([cap.total, cap.totalQueued]).toEqual([0, 0]);
    });
  });
});
