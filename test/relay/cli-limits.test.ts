/**
 * The relay's job bounds as an operator sets them: `club-provider relay --job-limit name=value`,
 * a real relay process, checked through the API; a name that is not a limit is refused at start.
 */
import { describe, expect, it } from "vitest";
import { runCli, scratchDir, writeSecret } from "../e2e/harness.ts";
import { freePort } from "../fakes/util.ts";

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
