/**
 * Starting the real llama-server built by test/real/llama-server.sh (its cache directory comes
 * in CLUB_LLAMA_DIR, set by `npm run test:real`).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { freePort } from "../fakes/util.ts";

export const LLAMA_DIR = process.env.CLUB_LLAMA_DIR ?? "";

export interface RealLlama {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts llama-server on a free loopback port and waits until `/health` answers `until`
 * (200: ready; 503: still loading the model, which lasts about a second for the tiny model).
 */
export async function startLlama(
  extraArgs: string[] = [],
  until: 200 | 503 = 200,
): Promise<RealLlama> {
  if (!LLAMA_DIR)
    throw new Error("CLUB_LLAMA_DIR is not set: run the real tier with `npm run test:real`");
  const port = await freePort();
  const child = spawn(
    join(LLAMA_DIR, "llama-server"),
    [
      "-m",
      join(LLAMA_DIR, "tiny-qwen2-chat.gguf"),
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "-c",
      "512",
      "-np",
      "2",
      "-t",
      "1",
      ...extraArgs,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-8000)));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 3000; i++) {
    if (child.exitCode !== null)
      throw new Error(`llama-server exited with ${child.exitCode}:\n${log}`);
    const status = await fetch(`${url}/health`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === until) break;
    await new Promise((r) => setTimeout(r, until === 503 ? 2 : 100));
  }
  return {
    url,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    },
  };
}
