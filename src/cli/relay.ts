/** `club-provider relay`: serve the club's public API and accept provider tunnels. */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { createLogger } from "../log.ts";
import { UserError } from "../errors.ts";
import { loadKeys } from "../relay/keys.ts";
import { DEFAULT_MAX_JSON_BYTES } from "../relay/uploads.ts";
import { DEFAULT_LIMITS, type JobLimits } from "../relay/jobs/types.ts";
import { DEFAULT_PROVIDER_LIMITS } from "../relay/provider-link.ts";
import { DEFAULT_UPLOAD_LIMITS } from "../relay/uploads.ts";
import { DEFAULT_CONNECTION_LIMITS } from "../relay/connection-limit.ts";
import { DEFAULT_MEDIA_LIMITS } from "../relay/media/types.ts";
import type { Relay } from "../relay/server.ts";
import { DEFAULT_UI_STREAMS } from "../relay/ui-events.ts";
import type { ClusterJoin } from "../relay/cluster/index.ts";
import { exitOnFault, onShutdown } from "./signals.ts";
import { tuneHeapGrowth } from "../process/heap.ts";

interface RelayFlags {
  host: string;
  port: string;
  keys?: string;
  heartbeat: string;
  keepalive: string;
  rateLimit: string;
  dataDir?: string;
  database?: string;
  internalListen?: string;
  instanceId?: string;
  instanceUrl?: string;
  clusterSecretFile?: string;
  clusterHeartbeat: string;
  clusterExpiry: string;
  instanceLease: string;
  logLevel?: string;
  maxTunnels: string;
  maxManifestBytes: string;
  maxModels: string;
  controlRate: string;
  authFailures: string;
  trustProxy?: boolean;
  maxJsonBytes: string;
  maxUploads: string;
  uploadBuffer: string;
  uploadIdle: string;
  uploadBufferTotal: string;
  headersTimeout: string;
  maxConnections: string;
  maxConnectionsPerAddress: string;
  jobLimit: string[];
  openRate: string;
  uiStreams: string;
  mediaMaxAge: string;
  mediaQuota: string;
  mediaSecretTtl: string;
  mediaMaxImageAnswer: string;
  voiceMaxBytes: string;
  voiceMaxSeconds: string;
  voiceMaxSamples: string;
}

/** The cluster settings from `--internal-listen` and the flags beside it. */
function clusterFlags(opts: RelayFlags, listen: string): ClusterJoin {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(listen);
  if (!m)
    throw new UserError(
      "bad_flag",
      `--internal-listen must be host:port, got ${JSON.stringify(listen)}`,
    );
  const secret = opts.clusterSecretFile
    ? readFileSync(opts.clusterSecretFile, "utf8").trim()
    : process.env.CLUB_RELAY_CLUSTER_SECRET;
  if (!secret)
    throw new UserError(
      "no_cluster_secret",
      "--internal-listen needs the cluster secret: --cluster-secret-file FILE or CLUB_RELAY_CLUSTER_SECRET",
    );
  return {
    internalHost: (m[1] ?? "").replace(/^\[|\]$/g, ""),
    internalPort: Number(m[2]),
    secret,
    heartbeatMs: positive("--cluster-heartbeat", opts.clusterHeartbeat) * 1000,
    expiryMs: positive("--cluster-expiry", opts.clusterExpiry) * 1000,
    ...(opts.instanceId ? { instanceId: opts.instanceId } : {}),
    ...(opts.instanceUrl ? { instanceUrl: opts.instanceUrl } : {}),
  };
}

/** `$XDG_DATA_HOME/club-provider/relay`, or `~/.local/share/club-provider/relay`. */
export function defaultDataDir(): string {
  const base = process.env.XDG_DATA_HOME || join(homedir(), ".local", "share");
  return join(base, "club-provider", "relay");
}

/** A flag's value as a positive number (or zero, where `zero` allows it); else a UserError. */
function positive(flag: string, value: string, zero = false): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !zero))
    throw new UserError(
      "bad_flag",
      `${flag} must be a ${zero ? "number ≥ 0" : "positive number"}, got ${JSON.stringify(value)}`,
    );
  return n;
}

/** `--job-limit name=value` flags as `JobLimits` overrides; a UserError names a bad one. */
export function jobLimitFlags(flags: string[]): Partial<JobLimits> {
  const out: Partial<JobLimits> = {};
  for (const flag of flags) {
    const [name = "", value = ""] = flag.split("=", 2);
    if (!(name in DEFAULT_LIMITS))
      throw new UserError(
        "bad_flag",
        `--job-limit ${JSON.stringify(flag)}: no such limit; the limits are ${Object.keys(DEFAULT_LIMITS).join(", ")}`,
      );
    out[name as keyof JobLimits] = positive(`--job-limit ${name}`, value);
  }
  return out;
}

export function relayCommand(): Command {
  return new Command("relay")
    .description("run a relay: the club's public /v1 API, routed to the providers connected to it")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on", "8787")
    .option(
      "--keys <file>",
      'JSON file mapping each API key to its member: {"<key>": "<member>"} (or CLUB_RELAY_KEYS=key=member,...)',
    )
    .option("--heartbeat <seconds>", "heartbeat interval providers are asked to keep", "15")
    .option(
      "--keepalive <seconds>",
      "a streamed answer silent this long gets its 200 and an SSE comment this often until it begins (0: never)",
      "15",
    )
    .option(
      "--rate-limit <n>",
      "requests per second per key, bursts of twice that (0: no limit)",
      "50",
    )
    .option(
      "--data-dir <dir>",
      "where async jobs, batches, workflow runs and their results are kept (default $XDG_DATA_HOME/club-provider/relay or ~/.local/share/club-provider/relay)",
    )
    .option(
      "--database <url>",
      "a postgres:// URL (or CLUB_RELAY_DATABASE): a lone relay keeps its jobs, batches, workflow runs and usage there instead of --data-dir's SQLite, one relay per database (results and the media library stay in --data-dir); with --internal-listen, instances share providers through it and keep their jobs in --data-dir",
    )
    .option(
      "--instance-lease <seconds>",
      "with --database and no --internal-listen: how long the relay holding the database may go without renewing its lease before another relay may take over",
      "15",
    )
    .option(
      "--internal-listen <host:port>",
      "run as one of several relays sharing --database: listen here for the other instances' streams (never expose it to members)",
    )
    .option(
      "--instance-id <name>",
      "this instance's unique name in the club (default: random at each start)",
    )
    .option(
      "--instance-url <url>",
      "the --internal-listen address as the other instances reach it (default http://<internal-listen>)",
    )
    .option(
      "--cluster-secret-file <file>",
      "file with the secret every instance shares (or CLUB_RELAY_CLUSTER_SECRET); at least 16 characters",
    )
    .option("--cluster-heartbeat <seconds>", "how often this instance says it is alive", "5")
    .option(
      "--cluster-expiry <seconds>",
      "an instance silent this long is dropped, with its providers, by the others",
      "15",
    )
    .option("--max-tunnels <n>", "provider tunnels one member may hold open at once", "8")
    .option(
      "--max-manifest-bytes <n>",
      "largest control message (so manifest) a provider may send",
      String(DEFAULT_PROVIDER_LIMITS.maxControlBytes),
    )
    .option("--max-models <n>", "most models one provider may advertise", "1000")
    .option(
      "--control-rate <n>",
      "control messages per second a tunnel may send (bursts of 20); beyond it the tunnel is closed (4429)",
      "2",
    )
    .option(
      "--auth-failures <n>",
      "refused keys per minute per source address (bursts of 20) before 429 (0: no limit)",
      "60",
    )
    .option(
      "--max-connections <n>",
      "connections open at once in all; beyond it a new one is closed (0: no limit)",
      String(DEFAULT_CONNECTION_LIMITS.total),
    )
    .option(
      "--max-connections-per-address <n>",
      "connections one source address (IPv6: one /64) may hold open at once; beyond it a new one is closed (0: no limit; not applied with --trust-proxy)",
      String(DEFAULT_CONNECTION_LIMITS.perAddress),
    )
    .option(
      "--trust-proxy",
      "count refused keys by the last X-Forwarded-For address (behind a reverse proxy)",
    )
    .option(
      "--max-json-bytes <n>",
      "largest JSON request body (media uploads are multipart and streamed)",
      String(DEFAULT_MAX_JSON_BYTES),
    )
    .option(
      "--max-uploads <n>",
      "request bodies one member may be sending at once (429 beyond)",
      String(DEFAULT_UPLOAD_LIMITS.perMember),
    )
    .option(
      "--upload-buffer <MiB>",
      "MiB of one member's JSON bodies the relay holds at once, read or arriving, until their answers end (429 beyond)",
      String(DEFAULT_UPLOAD_LIMITS.bufferedPerMember / 1024 / 1024),
    )
    .option(
      "--upload-buffer-total <MiB>",
      "MiB of every member's JSON bodies the relay holds at once, read or arriving, until their answers end (503 beyond)",
      String(DEFAULT_UPLOAD_LIMITS.bufferedTotal / 1024 / 1024),
    )
    .option(
      "--upload-idle <seconds>",
      "a request body that sends nothing this long is cut with 408",
      String(DEFAULT_UPLOAD_LIMITS.idleMs / 1000),
    )
    .option(
      "--headers-timeout <seconds>",
      "time a client has to send its request headers, and to hang up after a refused upgrade, a malformed request, or an answer that came before its body",
      "60",
    )
    .option(
      "--job-limit <name=value>",
      "a bound on async jobs, e.g. maxStoredPerMember=20000 (repeatable; names and defaults in docs/jobs.md)",
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option(
      "--open-rate <n>",
      "keyless requests (media URLs, the gallery) per second per source address, bursts of twice that (0: no limit)",
      "50",
    )
    .option(
      "--ui-streams <n>",
      "live club pages (the page's /ui/api/events stream) one member may have open at once; beyond it a page refreshes every few seconds instead",
      String(DEFAULT_UI_STREAMS),
    )
    .option("--log-level <level>", "trace, debug, info, warn or error")
    .option(
      "--media-max-age <days>",
      "stored results older than this are removed, oldest first, unless pinned (0 keeps them)",
      String(DEFAULT_MEDIA_LIMITS.maxAgeMs / 86_400_000),
    )
    .option(
      "--media-quota <MiB>",
      "MiB of stored results one member may keep; past it new results are refused (403)",
      String(DEFAULT_MEDIA_LIMITS.maxBytesPerMember / 1024 / 1024),
    )
    .option(
      "--media-secret-ttl <seconds>",
      "how long the one fetch of a SECRET image URL stays possible",
      String(DEFAULT_MEDIA_LIMITS.secretTtlMs / 1000),
    )
    .option(
      "--media-max-image-answer <MiB>",
      "largest JSON answer of an image call the relay reads to store its images (502 beyond)",
      String(DEFAULT_MEDIA_LIMITS.maxImageAnswerBytes / 1024 / 1024),
    )
    .option(
      "--voice-max-bytes <MiB>",
      "largest voice sample a member may upload",
      String(DEFAULT_MEDIA_LIMITS.voiceMaxBytes / 1024 / 1024),
    )
    .option(
      "--voice-max-seconds <seconds>",
      "longest voice sample, read from its header",
      String(DEFAULT_MEDIA_LIMITS.voiceMaxSeconds),
    )
    .option(
      "--voice-max-samples <n>",
      "voice samples one member may keep",
      String(DEFAULT_MEDIA_LIMITS.voiceMaxPerMember),
    )
    .action(async (opts: RelayFlags) => {
      tuneHeapGrowth();
      // Imported here, not above: `club-provider start` reads this file for its options only.
      const { createRelay } = await import("../relay/server.ts");
      const log = createLogger(opts.logLevel ? { level: opts.logLevel } : {});
      const keys = loadKeys({
        ...(opts.keys ? { file: opts.keys } : {}),
        ...(process.env.CLUB_RELAY_KEYS ? { env: process.env.CLUB_RELAY_KEYS } : {}),
      });
      const database = opts.database ?? process.env.CLUB_RELAY_DATABASE;
      // Before listening: a SIGTERM during start-up must stop us too.
      const started: { relay?: Relay } = {};
      exitOnFault(log);
      onShutdown(log, async () => {
        await started.relay?.close();
      });
      const relay = await createRelay({
        host: opts.host,
        port: Number(opts.port),
        keys,
        log,
        heartbeatMs: Number(opts.heartbeat) * 1000,
        keepAliveMs: Number(opts.keepalive) * 1000,
        rateLimit: Number(opts.rateLimit),
        openRate: positive("--open-rate", opts.openRate, true),
        uiStreams: positive("--ui-streams", opts.uiStreams),
        dataDir: opts.dataDir ?? defaultDataDir(),
        ...(database
          ? { database, instanceLeaseMs: positive("--instance-lease", opts.instanceLease) * 1000 }
          : {}),
        ...(opts.internalListen ? { cluster: clusterFlags(opts, opts.internalListen) } : {}),
        jobLimits: jobLimitFlags(opts.jobLimit),
        providerLimits: {
          maxTunnelsPerMember: positive("--max-tunnels", opts.maxTunnels),
          maxControlBytes: positive("--max-manifest-bytes", opts.maxManifestBytes),
          maxModels: positive("--max-models", opts.maxModels),
          controlPerSecond: positive("--control-rate", opts.controlRate),
        },
        maxJsonBytes: positive("--max-json-bytes", opts.maxJsonBytes),
        uploadLimits: {
          perMember: positive("--max-uploads", opts.maxUploads),
          bufferedPerMember: positive("--upload-buffer", opts.uploadBuffer) * 1024 * 1024,
          bufferedTotal: positive("--upload-buffer-total", opts.uploadBufferTotal) * 1024 * 1024,
          idleMs: positive("--upload-idle", opts.uploadIdle) * 1000,
        },
        headersTimeoutMs: positive("--headers-timeout", opts.headersTimeout) * 1000,
        connectionLimits: {
          total: positive("--max-connections", opts.maxConnections, true),
          perAddress: positive(
            "--max-connections-per-address",
            opts.maxConnectionsPerAddress,
            true,
          ),
        },
        authThrottle: {
          perMinute: positive("--auth-failures", opts.authFailures, true),
          trustProxy: opts.trustProxy === true,
        },
        mediaLimits: {
          maxAgeMs: positive("--media-max-age", opts.mediaMaxAge, true) * 86_400_000,
          maxBytesPerMember: positive("--media-quota", opts.mediaQuota) * 1024 * 1024,
          secretTtlMs: positive("--media-secret-ttl", opts.mediaSecretTtl) * 1000,
          maxImageAnswerBytes:
            positive("--media-max-image-answer", opts.mediaMaxImageAnswer) * 1024 * 1024,
          voiceMaxBytes: positive("--voice-max-bytes", opts.voiceMaxBytes) * 1024 * 1024,
          voiceMaxSeconds: positive("--voice-max-seconds", opts.voiceMaxSeconds),
          voiceMaxPerMember: positive("--voice-max-samples", opts.voiceMaxSamples),
        },
      });
      started.relay = relay;
      process.stdout.write(
        `relay ready: OpenAI base URL ${relay.url}/v1, providers connect to ${relay.url.replace(/^http/, "ws")}\n`,
      );
    });
}
