/**
 * One relay instance of a test cluster, in process: `createRelay` on a free port with the
 * cluster settings the PostgreSQL tier's tests share (internal listener on loopback, the test
 * secret, a fast heartbeat), plus whatever the test sets. Or as an operator runs one:
 * `club-provider relay` as a process (`relayProcess`), and a daemon connected to it
 * (`daemonProcess`).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "../../src/log.ts";
import type { ClusterJoin } from "../../src/relay/cluster/index.ts";
import type { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay, type RelayOptions } from "../../src/relay/server.ts";
import { runCli, scratchDir, writeSecret, type CliProcess } from "../e2e/harness.ts";

/** The cluster secret every test instance shares. */
export const SECRET = "cluster-secret-for-tests-0123";

export function clusterInstance(
  name: string,
  database: string,
  keys: KeyRing,
  options: { cluster?: Partial<ClusterJoin> } & Partial<Omit<RelayOptions, "cluster">> = {},
): Promise<Relay> {
  const { cluster, ...rest } = options;
  return createRelay({
    port: 0,
    keys,
    log: silentLogger,
    heartbeatMs: 1000,
    keepAliveMs: 0,
    database,
    ...rest,
    cluster: {
      instanceId: name,
      internalHost: "127.0.0.1",
      internalPort: 0,
      secret: SECRET,
      heartbeatMs: 100,
      expiryMs: 1000,
      ...cluster,
    },
  });
}

/** A `club-provider relay` process of a test cluster, and the URL it serves. */
export interface RelayProcess {
  name: string;
  proc: CliProcess;
  url: string;
}

/**
 * Starts `club-provider relay` as one instance of a club on `database`, with `home`'s
 * `keys.json` and `cluster-secret`, its data under `home/<name>`: beating every second, expired
 * after 3 s of silence.
 */
export async function relayProcess(
  home: string,
  name: string,
  database: string,
): Promise<RelayProcess> {
  const dataDir = join(home, name);
  mkdirSync(dataDir);
  const proc = runCli(
    [
      ...["relay", "--host", "127.0.0.1", "--port", "0", "--keys", join(home, "keys.json")],
      ...["--heartbeat", "2", "--rate-limit", "0", "--data-dir", dataDir],
      ...["--database", database, "--internal-listen", "127.0.0.1:0", "--instance-id", name],
      ...["--cluster-secret-file", join(home, "cluster-secret")],
      ...["--cluster-heartbeat", "1", "--cluster-expiry", "3"],
    ],
    { home },
  );
  const line = await proc.waitFor(/relay ready: OpenAI base URL (http:\/\/\S+)\/v1/);
  const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1];
  if (!url) throw new Error(`no relay URL in ${line}`);
  return { name, proc, url };
}

/** Starts `club-provider start` as rig `name` of `apiKey`, serving `service`, once connected. */
export async function daemonProcess(
  relayUrl: string,
  apiKey: string,
  name: string,
  service: string,
  env: Record<string, string> = {},
): Promise<CliProcess> {
  const home = scratchDir();
  const proc = runCli(
    [
      ...["start", "--relay", relayUrl.replace(/^http/, "ws")],
      ...["--api-key-file", writeSecret(home, "key.txt", apiKey), "--name", name],
      ...["--no-autodetect", "--status-port", "0", "--service", service],
    ],
    { home, env },
  );
  await proc.waitFor(/connected to the relay/);
  return proc;
}
