/**
 * One relay instance of a test cluster, in process: `createRelay` on a free port with the
 * cluster settings the PostgreSQL tier's tests share (internal listener on loopback, the test
 * secret, a fast heartbeat), plus whatever the test sets.
 */
import { silentLogger } from "../../src/log.ts";
import type { ClusterJoin } from "../../src/relay/cluster/index.ts";
import type { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay, type RelayOptions } from "../../src/relay/server.ts";

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
