/**
 * A whole club on loopback, started as users start it: a fake engine, `club-provider relay`
 * and `club-provider start` as separate processes, and an official `openai` client.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { runCli, scratchDir, writeSecret, type CliProcess } from "./harness.ts";

export const ALICE_KEY = "sk-alice-e2e-0123456789";
export const BOB_KEY = "sk-bob-e2e-0123456789";
export const CAROL_KEY = "sk-carol-e2e-0123456789";

export interface Stack {
  home: string;
  relay: CliProcess;
  relayUrl: string;
  daemon: CliProcess;
  client: OpenAI;
  /** Starts (again) a relay on the same port, e.g. after killing it. */
  restartRelay(): Promise<void>;
  /**
   * Starts (again) the stack's daemon: its home (stored settings) and engines, plus `args`.
   * Another provider needs its own home and engines: `startProvider`.
   */
  startDaemon(args?: string[]): Promise<CliProcess>;
  stop(): Promise<void>;
}

async function startRelay(
  home: string,
  port: number,
  args: string[],
): Promise<{ relay: CliProcess; url: string }> {
  const relay = runCli(
    [
      "relay",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--keys",
      join(home, "keys.json"),
      "--heartbeat",
      "2",
      // Tests fire bursts of hundreds of requests; the limit itself is tested in test/relay.
      "--rate-limit",
      "0",
      ...args,
    ],
    { home },
  );
  const line = await relay.waitFor(/relay ready: OpenAI base URL (http:\/\/\S+)\/v1/);
  const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1];
  if (!url) throw new Error(`no relay URL in ${line}`);
  return { relay, url };
}

/**
 * Starts relay and daemon serving `engineUrls`; `env` adds to the daemon's environment,
 * `relayArgs` to the relay's flags.
 */
export async function startStack(
  engineUrls: string[],
  daemonArgs: string[] = [],
  env: Record<string, string> = {},
  relayArgs: string[] = [],
): Promise<Stack> {
  const home = scratchDir();
  writeFileSync(
    join(home, "keys.json"),
    JSON.stringify({ [ALICE_KEY]: "alice", [BOB_KEY]: "bob", [CAROL_KEY]: "carol" }),
  );
  const keyFile = writeSecret(home, "key.txt", ALICE_KEY);
  let { relay, url: relayUrl } = await startRelay(home, 0, relayArgs);
  const port = Number(new URL(relayUrl).port);
  const startDaemon = async (args: string[] = []): Promise<CliProcess> => {
    const daemon = runCli(
      [
        "start",
        "--relay",
        relayUrl.replace("http", "ws"),
        "--api-key-file",
        keyFile,
        "--name",
        "rig1",
        "--no-autodetect",
        "--status-port",
        "0",
        ...engineUrls.flatMap((u) => ["--service", u]),
        // Runs a suite on one tunnel protocol: CLUB_TEST_TUNNEL_PROTOCOL=1 npx vitest run test/e2e
        ...(process.env.CLUB_TEST_TUNNEL_PROTOCOL
          ? ["--tunnel-protocol", process.env.CLUB_TEST_TUNNEL_PROTOCOL]
          : []),
        ...daemonArgs,
        ...args,
      ],
      { home, env },
    );
    await daemon.waitFor(/connected to the relay/);
    return daemon;
  };
  const daemon = await startDaemon();
  const stack: Stack = {
    home,
    relay,
    relayUrl,
    daemon,
    client: new OpenAI({ baseURL: `${relayUrl}/v1`, apiKey: ALICE_KEY, maxRetries: 0 }),
    async restartRelay() {
      ({ relay, url: relayUrl } = await startRelay(home, port, relayArgs));
      stack.relay = relay;
    },
    startDaemon,
    async stop() {
      await Promise.all([stack.daemon.stop("SIGKILL"), stack.relay.stop("SIGKILL")]);
    },
  };
  return stack;
}

/**
 * Another provider of the same member on the stack's relay, with a home (stored settings) and
 * engines of its own; `settings` are stored with `config set` before it starts.
 */
export async function startProvider(
  stack: Stack,
  name: string,
  engineUrls: string[],
  settings: Record<string, string> = {},
): Promise<CliProcess> {
  const home = scratchDir();
  const keyFile = writeSecret(home, "key.txt", ALICE_KEY);
  for (const [key, value] of Object.entries(settings)) {
    const set = runCli(["config", "set", key, value], { home });
    if ((await set.exited) !== 0) throw new Error(`config set ${key} failed:\n${set.output()}`);
  }
  const daemon = runCli(
    [
      "start",
      "--relay",
      stack.relayUrl.replace("http", "ws"),
      "--api-key-file",
      keyFile,
      "--name",
      name,
      "--no-autodetect",
      "--status-port",
      "0",
      ...engineUrls.flatMap((u) => ["--service", u]),
    ],
    { home },
  );
  await daemon.waitFor(/connected to the relay/);
  return daemon;
}
