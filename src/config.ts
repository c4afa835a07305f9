/**
 * Configuration: stored settings (conf, `~/.config/club-provider/config.json`, mode 0600),
 * overridden by the environment (`CLUB_*`), overridden by flags. Normalised once into a full
 * `Config`; every problem is reported together.
 */
import { readFileSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { isAbsolute } from "node:path";
import Conf from "conf";
import { UserError } from "./errors.ts";
import type { ServiceConfig } from "./discovery/catalog.ts";
import type { GpuOverride } from "./hardware/types.ts";
import type { MemberLimit } from "./gateway/member-limits.ts";
import { MAX_ACCESS_MEMBERS, type Access } from "./protocol/manifest.ts";
import { DEFAULT_MAX_STREAMS } from "./transport/h2-settings.ts";
import { checkSchedule, type ScheduleWindow } from "./daemon/schedule.ts";
import {
  checkEngines,
  ENGINE_DEFAULTS,
  type EngineSettings,
  type StoredEngine,
} from "./engines/schema.ts";

/** Stored auto-pause settings: serving stops on a GPU while another program of the owner's uses it. */
export interface StoredAutoPause {
  /** Default: on wherever `nvidia-smi` or `rocm-smi` answers. */
  enabled?: boolean;
  /** A foreign program must hold the GPU this long before its models pause (default 5). */
  afterSeconds?: number;
  /** Serving resumes this long after the last foreign program left (default 60). */
  resumeSeconds?: number;
  /** How often the GPU tools are asked (default 5). */
  pollSeconds?: number;
  /** Process names never counted (compositors and display servers always hold the GPU). */
  ignore?: string[];
}

/** Auto-pause after defaults are applied. */
export interface AutoPauseConfig {
  /** undefined: on when a GPU tool answers. */
  enabled: boolean | undefined;
  afterMs: number;
  resumeMs: number;
  pollMs: number;
  ignore: string[];
}

/**
 * Programs that hold a graphics context on any desktop, all the time: counting them would
 * keep a desktop rig paused for ever. Matched against the process name's last path part.
 */
export const DEFAULT_AUTO_PAUSE_IGNORE = [
  "Xorg",
  "Xwayland",
  "gnome-shell",
  "kwin_x11",
  "kwin_wayland",
  "plasmashell",
  "mutter",
  "sway",
  "Hyprland",
  "weston",
  "gdm-wayland-session",
  "cinnamon",
  "xfwm4",
  "picom",
  "dwm.exe",
  "explorer.exe",
];

/** What the user can store with `club-provider config set`. */
export interface StoredConfig {
  relayUrl?: string;
  apiKey?: string;
  name?: string;
  services?: ServiceConfig[];
  autodetect?: boolean;
  statusPort?: number;
  heartbeatSeconds?: number;
  /** GPUs detection cannot see or gets wrong; an entry replaces the detected GPU of its index. */
  gpus?: GpuOverride[];
  /** Shared limits for services on one GPU: `{"gpu0": {"maxConcurrent": 2}}`. */
  resourceGroups?: Record<string, { maxConcurrent: number }>;
  /** Requests one member may hold waiting per service (or resource group) before 429. */
  queueSize?: number;
  /** Requests a service (or resource group) may hold waiting, all members together. */
  queueTotal?: number;
  /** Key of the `start --local` relay, kept so OpenAI clients need it only once. */
  localKey?: string;
  /**
   * Who besides the owner may use each model or service, by model id or service name (a model's
   * own entry wins over its service's); anything not listed is private.
   */
  sharing?: Record<string, Access>;
  /**
   * The owner's limits on other members' use of the rig, for all (`"*"`) or one member by name:
   * `{"*": {"concurrent": 2, "requestsPerDay": 500}}`.
   */
  memberLimits?: Record<string, MemberLimit>;
  /** Allow a plain `ws://` relay that is not on loopback (the key crosses the network in clear). */
  allowInsecureRelay?: boolean;
  /** Most HTTP/2 streams (requests) a relay may have open on one tunnel (default 64). */
  maxStreams?: number;
  /** Tunnel protocol: `"auto"` (default: 2, falling back to 1 for an older relay), 1 or 2. */
  tunnelProtocol?: TunnelProtocolSetting;
  /** Most MiB of JSON request bodies held in memory at once, over all requests (default 256). */
  maxBufferedMiB?: number;
  /** Most rig pages open at once, each holding a live stream (default 8). */
  pageStreams?: number;
  /** Why the owner paused the rig (`club-provider pause`); kept so a restart stays paused. */
  paused?: string;
  autoPause?: StoredAutoPause;
  /** When the rig serves, in local time; outside every window it is paused. Empty: always. */
  schedule?: ScheduleWindow[];
  /** Engines the daemon starts on demand and stops when idle (docs/engines.md). */
  engines?: StoredEngine[];
  /** How long a request waits for a cold engine before 503 (default 120). */
  engineWaitSeconds?: number;
  /** VRAM kept free on each GPU for managed engines' budget (default 512). */
  vramReserveMiB?: number;
  /** A GPU's budget for managed engines, by index: `{"0": 20000}`; instead of total − reserve. */
  vramBudgetMiB?: Record<string, number>;
  /** Failed starts or crashes in a row before an engine's models are withdrawn (default 3). */
  engineMaxFailures?: number;
  /** SIGTERM, then this long before SIGKILL (default 10). */
  engineStopSeconds?: number;
  /** Lines of output kept per engine for `engines logs` (default 500). */
  engineLogLines?: number;
  /** First wait before an engine is started again after a failure, doubled each time (default 2). */
  engineRetrySeconds?: number;
}

/** The daemon's settings after every source is applied. */
export interface Config {
  relayUrl: string | undefined;
  apiKey: string | undefined;
  name: string;
  services: ServiceConfig[];
  autodetect: boolean;
  /** Loopback port of the status server; 0 turns it off. */
  statusPort: number;
  heartbeatMs: number;
  /** How often engines are probed again for models that appeared or vanished. */
  rescanMs: number;
  /** Number of tunnel connections to hold to the relay. */
  connections: number;
  /** GPU overrides from the `gpus` setting, merged over detection in the manifest. */
  gpus: GpuOverride[];
  resourceGroups: Record<string, { maxConcurrent: number }>;
  queueSize: number;
  queueTotal: number;
  /** Stored `sharing` with `--share` flags applied over it. */
  sharing: Record<string, Access>;
  memberLimits: Record<string, MemberLimit>;
  /** `ws://` to a relay off this machine was allowed (`--insecure`, `allowInsecureRelay`). */
  insecureRelay: boolean;
  maxStreams: number;
  tunnelProtocol: TunnelProtocolSetting;
  maxBufferedBytes: number;
  pageStreams: number;
  /** The stored pause reason: the daemon starts paused when set. */
  paused: string | undefined;
  autoPause: AutoPauseConfig;
  schedule: ScheduleWindow[];
  engines: StoredEngine[];
  engineSettings: EngineSettings;
}

/** Flags of `club-provider start` that override config. */
export interface ConfigFlags {
  relay?: string;
  apiKeyFile?: string;
  name?: string;
  service?: string[];
  autodetect?: boolean;
  statusPort?: string;
  pageStreams?: string;
  connections?: string;
  /** `--share <model>` (with the club), `--share <model>=bob,carol`, `--share <model>=private`. */
  share?: string[];
  insecure?: boolean;
  /** `--tunnel-protocol auto|1|2`. */
  tunnelProtocol?: string;
}

/** Which tunnel protocol the daemon speaks (`tunnelProtocol`, `--tunnel-protocol`). */
export type TunnelProtocolSetting = "auto" | 1 | 2;

function tunnelProtocolFlag(
  value: string | undefined,
  problems: string[],
): TunnelProtocolSetting | undefined {
  if (value === undefined) return undefined;
  if (value === "auto") return "auto";
  if (value === "1" || value === "2") return Number(value) as 1 | 2;
  problems.push(`--tunnel-protocol: expected auto, 1 or 2, got ${JSON.stringify(value)}`);
  return undefined;
}

export const DEFAULT_STATUS_PORT = 8790;

const schema = {
  relayUrl: { type: "string" },
  apiKey: { type: "string" },
  name: { type: "string", minLength: 1, maxLength: 128 },
  autodetect: { type: "boolean" },
  statusPort: { type: "integer", minimum: 0, maximum: 65535 },
  heartbeatSeconds: { type: "number", minimum: 1, maximum: 120 },
  localKey: { type: "string" },
  allowInsecureRelay: { type: "boolean" },
  maxStreams: { type: "integer", minimum: 1, maximum: 100000 },
  tunnelProtocol: { enum: ["auto", 1, 2] },
  maxBufferedMiB: { type: "integer", minimum: 1, maximum: 1048576 },
  pageStreams: { type: "integer", minimum: 1, maximum: 1000 },
  paused: { type: "string", minLength: 1, maxLength: 256 },
  autoPause: {
    type: "object",
    additionalProperties: false,
    properties: {
      enabled: { type: "boolean" },
      afterSeconds: { type: "number", minimum: 0, maximum: 86400 },
      resumeSeconds: { type: "number", minimum: 0, maximum: 86400 },
      pollSeconds: { type: "number", minimum: 0.1, maximum: 3600 },
      ignore: { type: "array", maxItems: 256, items: { type: "string", minLength: 1 } },
    },
  },
  schedule: {
    type: "array",
    maxItems: 64,
    items: {
      type: "object",
      required: ["days", "from", "to"],
      additionalProperties: false,
      properties: {
        days: {
          type: "array",
          minItems: 1,
          items: { enum: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] },
        },
        from: { type: "string", pattern: "^\\d\\d:\\d\\d$" },
        to: { type: "string", pattern: "^\\d\\d:\\d\\d$" },
      },
    },
  },
  resourceGroups: {
    type: "object",
    additionalProperties: {
      type: "object",
      required: ["maxConcurrent"],
      properties: { maxConcurrent: { type: "integer", minimum: 1 } },
    },
  },
  queueSize: { type: "integer", minimum: 0, maximum: 100000 },
  queueTotal: { type: "integer", minimum: 0, maximum: 1000000 },
  memberLimits: {
    type: "object",
    additionalProperties: {
      type: "object",
      additionalProperties: false,
      properties: {
        concurrent: { type: "integer", minimum: 0, maximum: 100000 },
        requestsPerDay: { type: "integer", minimum: 0, maximum: 1000000000 },
      },
    },
  },
  sharing: {
    type: "object",
    propertyNames: { minLength: 1, maxLength: 256 },
    additionalProperties: {
      anyOf: [
        { enum: ["private", "club"] },
        {
          type: "array",
          maxItems: MAX_ACCESS_MEMBERS,
          items: { type: "string", minLength: 1, maxLength: 128 },
        },
      ],
    },
  },
  gpus: {
    type: "array",
    items: {
      type: "object",
      required: ["vendor", "model", "vram_gb"],
      properties: {
        vendor: { enum: ["nvidia", "amd", "apple", "intel"] },
        model: { type: "string", minLength: 1 },
        vram_gb: { type: "number", minimum: 0 },
        index: { type: "integer", minimum: 0 },
      },
    },
  },
  // Checked field by field by checkEngines, which names the entry and the fix.
  engines: { type: "array", maxItems: 256, items: { type: "object" } },
  engineWaitSeconds: { type: "number", minimum: 0, maximum: 86400 },
  vramReserveMiB: { type: "integer", minimum: 0, maximum: 16777216 },
  vramBudgetMiB: {
    type: "object",
    propertyNames: { pattern: "^\\d{1,4}$" },
    additionalProperties: { type: "integer", minimum: 0, maximum: 16777216 },
  },
  engineMaxFailures: { type: "integer", minimum: 1, maximum: 1000 },
  engineStopSeconds: { type: "number", minimum: 0, maximum: 3600 },
  engineLogLines: { type: "integer", minimum: 1, maximum: 100000 },
  engineRetrySeconds: { type: "number", minimum: 0, maximum: 3600 },
  services: {
    type: "array",
    items: {
      type: "object",
      required: ["url"],
      properties: {
        url: { type: "string" },
        engine: { type: "string" },
        apiKey: { type: "string" },
        name: { type: "string" },
        aliases: { type: "object", additionalProperties: { type: "string" } },
        maxConcurrent: { type: "integer", minimum: 1 },
        resourceGroup: { type: "string", minLength: 1, maxLength: 64 },
        comfyui: {
          type: "object",
          additionalProperties: false,
          properties: { workflowsDir: { type: "string", minLength: 1 } },
        },
      },
    },
  },
} as const;

/** The conf store; `cwd` overrides the directory (tests, `--config-dir`). */
export function openStore(cwd?: string): Conf<StoredConfig> {
  try {
    return new Conf<StoredConfig>({
      projectName: "club-provider",
      projectSuffix: "",
      configFileMode: 0o600,
      schema,
      ...(cwd ? { cwd } : {}),
    });
  } catch (err) {
    // conf validates the whole file against the schema on load and names each bad field.
    throw new UserError(
      "config_file_invalid",
      `the stored settings are invalid: ${(err as Error).message}. ` +
        "Fix them with `club-provider config set`/`unset`, or edit the file `club-provider config path` prints.",
    );
  }
}

/** Reads an API key file, refusing one that other users can read. */
export function readKeyFile(path: string): string {
  let mode: number;
  let text: string;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, "utf8").trim();
  } catch (err) {
    throw new UserError(
      "key_file_unreadable",
      `cannot read the API key file ${path}: ${(err as Error).message}`,
    );
  }
  if (process.platform !== "win32" && (mode & 0o077) !== 0)
    throw new UserError(
      "key_file_mode",
      `the API key file ${path} is readable by other users (mode ${(mode & 0o777).toString(8)}): run chmod 600 ${path}`,
    );
  if (!text) throw new UserError("key_file_empty", `the API key file ${path} is empty`);
  return text;
}

function checkUrl(value: string, what: string, schemes: string[], problems: string[]): string {
  try {
    const u = new URL(value);
    if (!schemes.includes(u.protocol))
      problems.push(
        `${what}: ${value} must start with ${schemes.map((s) => `${s}//`).join(" or ")}`,
      );
    return value.replace(/\/+$/, "");
  } catch {
    problems.push(`${what}: ${JSON.stringify(value)} is not a URL`);
    return value;
  }
}

/**
 * One access setting as written on a command line: `club`, `private`, or members separated by
 * commas; `problem` says what is wrong otherwise.
 */
export function parseAccess(text: string): { access: Access } | { problem: string } {
  if (text === "club" || text === "private") return { access: text };
  const members = text.split(",").map((m) => m.trim());
  if (members.length > MAX_ACCESS_MEMBERS)
    return { problem: `at most ${MAX_ACCESS_MEMBERS} members may be named, got ${members.length}` };
  if (members.some((m) => m === "" || m.length > 128 || /\s/.test(m)))
    return {
      problem: `${JSON.stringify(text)} is not club, private, or member names (bob,carol)`,
    };
  return { access: members };
}

/** `--share` flags over the stored sharing: `<model>` shares with the club, `<model>=<access>`. */
function applyShareFlags(
  stored: Record<string, Access>,
  flags: string[],
  problems: string[],
): Record<string, Access> {
  const sharing = { ...stored };
  for (const flag of flags) {
    const at = flag.indexOf("=");
    const target = at < 0 ? flag : flag.slice(0, at);
    const parsed = at < 0 ? { access: "club" as const } : parseAccess(flag.slice(at + 1));
    if (target === "" || target.length > 256)
      problems.push(`--share ${JSON.stringify(flag)}: name a model or service`);
    else if ("problem" in parsed) problems.push(`--share ${flag}: ${parsed.problem}`);
    else sharing[target] = parsed.access;
  }
  return sharing;
}

function intFlag(
  value: string | undefined,
  what: string,
  min: number,
  problems: string[],
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    problems.push(`${what}: expected an integer ≥ ${min}, got ${JSON.stringify(value)}`);
  return n;
}

/** Merges stored config, environment and flags into one `Config`, or throws every problem at once. */
export function resolveConfig(
  stored: StoredConfig,
  env: NodeJS.ProcessEnv,
  flags: ConfigFlags = {},
): Config {
  const problems: string[] = [];
  let relayUrl = flags.relay ?? env.CLUB_RELAY_URL ?? stored.relayUrl;
  if (relayUrl)
    relayUrl = checkUrl(
      relayUrl,
      "relay URL",
      ["ws:", "wss:", "http:", "https:"],
      problems,
    ).replace(/^http/, "ws");
  let apiKey = env.CLUB_API_KEY ?? stored.apiKey;
  const keyFile = flags.apiKeyFile ?? env.CLUB_API_KEY_FILE;
  if (keyFile) {
    try {
      apiKey = readKeyFile(keyFile);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  const services: ServiceConfig[] = [...(stored.services ?? [])];
  for (const url of flags.service ?? []) {
    if (!services.some((s) => s.url.replace(/\/+$/, "") === url.replace(/\/+$/, "")))
      services.push({ url: checkUrl(url, "--service", ["http:", "https:"], problems) });
  }
  for (const [i, s] of (stored.services ?? []).entries()) {
    checkUrl(s.url, `services[${i}].url`, ["http:", "https:"], problems);
    const dir = s.comfyui?.workflowsDir;
    // The daemon may run as a service whose working directory is `/`.
    if (dir !== undefined && !isAbsolute(dir))
      problems.push(`services[${i}].comfyui.workflowsDir: ${JSON.stringify(dir)} must be absolute`);
  }
  const statusPort =
    intFlag(flags.statusPort ?? env.CLUB_STATUS_PORT, "status port", 0, problems) ??
    stored.statusPort ??
    DEFAULT_STATUS_PORT;
  const connections = intFlag(flags.connections, "--connections", 1, problems) ?? 1;
  const tunnelProtocol =
    tunnelProtocolFlag(flags.tunnelProtocol, problems) ?? stored.tunnelProtocol ?? "auto";
  const pageStreams =
    intFlag(flags.pageStreams, "--page-streams", 1, problems) ?? stored.pageStreams ?? 8;
  // Undocumented: tests shorten the re-scan; 30 s is right for a rig.
  const rescanSeconds = intFlag(env.CLUB_RESCAN_SECONDS, "CLUB_RESCAN_SECONDS", 1, problems) ?? 30;
  const name = flags.name ?? env.CLUB_PROVIDER_NAME ?? stored.name ?? hostname();
  if (name.length === 0 || name.length > 128)
    problems.push(`provider name must be 1-128 characters, got ${JSON.stringify(name)}`);
  const sharing = applyShareFlags(stored.sharing ?? {}, flags.share ?? [], problems);
  const schedule = stored.schedule ?? [];
  problems.push(...checkSchedule(schedule));
  const auto = stored.autoPause ?? {};
  problems.push(
    ...checkEngines(
      stored.engines,
      services.flatMap((s) => (s.name ? [s.name] : [])),
    ),
  );
  if (problems.length)
    throw new UserError("config_invalid", `configuration problems:\n  ${problems.join("\n  ")}`);
  return {
    relayUrl,
    apiKey,
    name,
    services,
    autodetect: flags.autodetect ?? stored.autodetect ?? true,
    statusPort,
    heartbeatMs: (stored.heartbeatSeconds ?? 15) * 1000,
    rescanMs: rescanSeconds * 1000,
    connections,
    gpus: stored.gpus ?? [],
    resourceGroups: stored.resourceGroups ?? {},
    queueSize: stored.queueSize ?? 32,
    queueTotal: stored.queueTotal ?? 256,
    sharing,
    memberLimits: stored.memberLimits ?? {},
    insecureRelay: flags.insecure ?? stored.allowInsecureRelay ?? false,
    maxStreams: stored.maxStreams ?? DEFAULT_MAX_STREAMS,
    tunnelProtocol,
    pageStreams,
    maxBufferedBytes: (stored.maxBufferedMiB ?? 256) * 1024 * 1024,
    paused: stored.paused,
    autoPause: {
      enabled: auto.enabled,
      afterMs: (auto.afterSeconds ?? 5) * 1000,
      resumeMs: (auto.resumeSeconds ?? 60) * 1000,
      pollMs: (auto.pollSeconds ?? 5) * 1000,
      ignore: auto.ignore ?? DEFAULT_AUTO_PAUSE_IGNORE,
    },
    schedule,
    engines: stored.engines ?? [],
    engineSettings: {
      waitMs: (stored.engineWaitSeconds ?? ENGINE_DEFAULTS.waitSeconds) * 1000,
      reserveMiB: stored.vramReserveMiB ?? ENGINE_DEFAULTS.reserveMiB,
      budgetMiB: stored.vramBudgetMiB ?? {},
      maxFailures: stored.engineMaxFailures ?? ENGINE_DEFAULTS.maxFailures,
      stopMs: (stored.engineStopSeconds ?? ENGINE_DEFAULTS.stopSeconds) * 1000,
      logLines: stored.engineLogLines ?? ENGINE_DEFAULTS.logLines,
      retryBaseMs: (stored.engineRetrySeconds ?? ENGINE_DEFAULTS.retrySeconds) * 1000,
    },
  };
}
