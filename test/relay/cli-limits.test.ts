/**
 * The relay's job bounds as an operator sets them: `club-provider relay --job-limit name=value`,
 * a real relay process, checked through the API; a name that is not a limit is refused at start.
 */
import { describe, expect, it } from "vitest";
import { runCli, scratchDir, writeSecret } from "../e2e/harness.ts";
import { freePort } from "../fakes/util.ts";
import { MediaRig } from "./jobs/media-rig.ts";

const KEY = "sk-limits-test-0123456789";

describe("relay --job-limit", () => {
  it("bounds a member's queued jobs as set", async () => {
    const home = scratchDir();
    writeSecret(home, "keys.json", JSON.stringify({ [KEY]: "alice" }));
    const port = await freePort();
    const relay = runCli(
      [
        "relay",
        "--port",
        String(port),
        "--keys",
        `${home}/keys.json`,
        "--data-dir",
        `${home}/data`,
        "--job-limit",
        "maxActivePerMember=2",
      ],
      { home },
    );
    try {
      await relay.waitFor(/relay ready/);
      const submit = () =>
        fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
          body: JSON.stringify({ model: "m", messages: [], async: true }),
        });
      expect((await submit()).status).toBe(202);
      expect((await submit()).status).toBe(202);
      const third = await submit();
      expect(third.status).toBe(429);
      expect(((await third.json()) as { error: { message: string } }).error.message).toContain(
        "the limit of 2",
      );
    } finally {
      await relay.stop();
    }
  });

  it("refuses a name that is not a limit, listing the names", async () => {
    const home = scratchDir();
    writeSecret(home, "keys.json", JSON.stringify({ [KEY]: "alice" }));
    const relay = runCli(
      ["relay", "--port", "0", "--keys", `${home}/keys.json`, "--job-limit", "maxJobs=5"],
      { home },
    );
    expect(await relay.exited).not.toBe(0);
    expect(relay.output()).toContain("no such limit; the limits are maxActivePerMember");
  });
});

describe("relay --media-quota", () => {
  it("refuses new stored results past the MiB set, and a quota of 0 at start", async () => {
    const home = scratchDir();
    writeSecret(home, "keys.json", JSON.stringify({ [KEY]: "alice" }));
    const port = await freePort();
    // 0.00015 MiB is 157 bytes: the second 100-byte image is stored under it (100 < 157), the
    // third finds the library at 200, past it.
    const relay = runCli(
      [
        "relay",
        "--port",
        String(port),
        "--keys",
        `${home}/keys.json`,
        "--data-dir",
        `${home}/data`,
        "--media-quota",
        "0.00015",
      ],
      { home },
    );
    const rig = new MediaRig({
      relayUrl: `http://127.0.0.1:${port}`,
      apiKey: KEY,
      image: Buffer.alloc(100, 1),
    });
    try {
      await relay.waitFor(/relay ready/);
      await rig.start();
      const generate = () =>
        fetch(`http://127.0.0.1:${port}/v1/images/generations`, {
          method: "POST",
          headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
          body: JSON.stringify({ model: "image-1", prompt: "x" }),
        });
      expect((await generate()).status).toBe(200);
      expect((await generate()).status).toBe(200);
      const third = await generate();
      expect(third.status).toBe(403);
      expect(((await third.json()) as { error: { code: string } }).error.code).toBe(
        "media_quota_exceeded",
      );
    } finally {
      rig.stop();
      await relay.stop();
    }
    const zero = runCli(
      ["relay", "--port", "0", "--keys", `${home}/keys.json`, "--media-quota", "0"],
      { home },
    );
    expect(await zero.exited).not.toBe(0);
    expect(zero.output()).toContain("--media-quota must be a positive number");
  });
});
