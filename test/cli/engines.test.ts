/**
 * `club-provider engines <verb>`: each verb talks to the status port it is given and prints
 * JSON when asked, though `engines` itself takes the same two options (commander hands such an
 * option to the parent). The daemon is a loopback server recording what reaches it; a decoy
 * on CLUB_STATUS_PORT proves the verb did not fall back to the default port.
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, scratchDir } from "../e2e/harness.ts";
import { closeNow, json, listenLoopback } from "../fakes/fake-server.ts";

const VIEW = { name: "qwen", state: "ready" };

function statusServer(seen: string[]): Server {
  return createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    if (req.url === "/engines") return json(res, 200, { engines: [] });
    if (req.url === "/engines/qwen/logs")
      return json(res, 200, { name: "qwen", lines: ["a", "b"] });
    json(res, req.url?.endsWith("/start") ? 202 : 200, { engine: VIEW });
  });
}

describe("engines verbs: --status-port and --json", () => {
  const seen: string[] = [];
  const decoySeen: string[] = [];
  const daemon = statusServer(seen);
  const decoy = statusServer(decoySeen);
  let port = "";
  let decoyPort = "";

  beforeAll(async () => {
    port = new URL(await listenLoopback(daemon)).port;
    decoyPort = new URL(await listenLoopback(decoy)).port;
  });
  afterAll(async () => {
    await closeNow(daemon);
    await closeNow(decoy);
  });

  async function cli(...args: string[]): Promise<string> {
    const run = runCli(["engines", ...args, "--status-port", port], {
      home: scratchDir(),
      env: { CLUB_STATUS_PORT: decoyPort },
    });
    expect(await run.exited, run.output()).toBe(0);
    return run.output();
  }

  it.each([
    [["list", "--json"], "GET /engines", { engines: [] }],
    [["--json"], "GET /engines", { engines: [] }],
    [["start", "qwen", "--json"], "POST /engines/qwen/start", VIEW],
    [["stop", "qwen", "--json"], "POST /engines/qwen/stop", VIEW],
    [["logs", "qwen", "--json"], "GET /engines/qwen/logs", { name: "qwen", lines: ["a", "b"] }],
  ])("engines %j reaches the given port and prints JSON", async (args, request, printed) => {
    seen.length = 0;
    expect(JSON.parse(await cli(...args))).toEqual(printed);
    expect(seen).toEqual([request]);
    expect(decoySeen).toEqual([]);
  });

  it("prints people's text without --json, and --lines keeps the last lines", async () => {
    expect((await cli("stop", "qwen")).trim()).toBe("qwen: ready");
    expect((await cli("logs", "qwen", "--lines", "1")).trim()).toBe("b");
    expect(decoySeen).toEqual([]);
  });
});
