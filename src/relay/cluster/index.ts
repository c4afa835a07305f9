/**
 * One relay instance joining a club of several: the internal listener other instances stream
 * to, and the directory that shares providers through PostgreSQL. `joinCluster` starts both;
 * `close` leaves the club's tables first, so the others stop routing here, then stops listening.
 */
import { randomBytes } from "node:crypto";
import type pg from "pg";
import type { Logger } from "../../log.ts";
import { UserError } from "../../errors.ts";
import type { Registry } from "../registry.ts";
import { ClusterDirectory } from "./directory.ts";
import { startInternal, type WorkHandler } from "./internal.ts";

/** Shortest cluster secret accepted. */
export const MIN_SECRET_LENGTH = 16;

export interface ClusterJoin {
  instanceId?: string;
  internalHost: string;
  internalPort: number;
  instanceUrl?: string;
  secret: string;
  heartbeatMs?: number;
  expiryMs?: number;
}

export interface ClusterMember {
  instanceId: string;
  internalUrl: string;
  directory: ClusterDirectory;
  close(): Promise<void>;
}

export async function joinCluster(
  settings: ClusterJoin,
  pool: pg.Pool | undefined,
  registry: Registry,
  log: Logger,
  work?: WorkHandler,
): Promise<ClusterMember> {
  if (!pool)
    throw new UserError(
      "cluster_needs_database",
      "several relay instances share their state in PostgreSQL: give --database postgres://… with --internal-listen",
    );
  if (settings.secret.length < MIN_SECRET_LENGTH)
    throw new UserError(
      "weak_cluster_secret",
      `the cluster secret must be at least ${MIN_SECRET_LENGTH} characters (CLUB_RELAY_CLUSTER_SECRET or --cluster-secret-file)`,
    );
  const beat = settings.heartbeatMs ?? 5_000;
  const expiry = settings.expiryMs ?? 15_000;
  if (expiry < 2 * beat)
    throw new UserError(
      "bad_flag",
      `the cluster expiry (${expiry / 1000} s) must be at least twice the heartbeat (${beat / 1000} s), or live instances drop each other`,
    );
  const instanceId = settings.instanceId ?? `inst_${randomBytes(6).toString("hex")}`;
  const internal = await startInternal({
    host: settings.internalHost,
    port: settings.internalPort,
    secret: settings.secret,
    registry,
    ...(work ? { work: () => work } : {}),
    log,
  });
  const instanceUrl = settings.instanceUrl ?? internal.url;
  let directory: ClusterDirectory;
  try {
    directory = await ClusterDirectory.start({
      pool,
      registry,
      instanceId,
      instanceUrl,
      secret: settings.secret,
      log,
      ...(settings.heartbeatMs ? { heartbeatMs: settings.heartbeatMs } : {}),
      ...(settings.expiryMs ? { expiryMs: settings.expiryMs } : {}),
    });
  } catch (err) {
    await internal.close();
    throw err;
  }
  log.info({ instance: instanceId, internal: instanceUrl }, "joined the club as %s", instanceId);
  return {
    instanceId,
    internalUrl: instanceUrl,
    directory,
    async close() {
      await directory.close();
      await internal.close();
    },
  };
}
