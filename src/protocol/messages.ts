import {
  ENGINE_STATES,
  FEATURES,
  MANIFEST_ENGINES,
  MAX_ACCESS_MEMBERS,
  SERVICE_TYPES,
  type Access,
  type EngineState,
  type Feature,
  type Manifest,
} from "./manifest.ts";
import {
  SchemaError,
  bool,
  isPlainObject,
  list,
  nullable,
  num,
  obj,
  oneOf,
  record,
  str,
  type Check,
} from "./schema.ts";
import { PROTOCOL_VERSION } from "./headers.ts";

/** Live figures for one GPU, sent with every heartbeat. Unknown values are null. */
export interface GpuLoad {
  index: number;
  vram_used_mb: number | null;
  utilization_pct: number | null;
  temperature_c: number | null;
  power_w: number | null;
}

/** Live load of one service. */
export interface ServiceLoad {
  in_flight: number;
  queued: number;
  up: boolean;
}

/** daemon → relay, first message on a new connection. */
export interface HelloMessage {
  type: "hello";
  v: number;
  provider: { name: string; version: string };
  manifest: Manifest;
  /** As in a heartbeat: a rig that starts paused is never routable, not even for one beat. */
  paused?: string;
  paused_models?: Record<string, string>;
}

/** daemon → relay, every heartbeat interval. `manifest` rides along only when it changed. */
export interface HeartbeatMessage {
  type: "heartbeat";
  v: number;
  seq: number;
  in_flight: number;
  queued: number;
  services: Record<string, ServiceLoad>;
  gpus: GpuLoad[];
  manifest?: Manifest;
  /** Why the owner paused the whole rig (`club-provider pause`, the schedule): it takes no work. */
  paused?: string;
  /** Models paused alone (their GPU is busy with something of the owner's), with why. */
  paused_models?: Record<string, string>;
}

/** The pause a hello or heartbeat carries: the rig's, and each model's alone. */
export type PauseFields = Pick<HeartbeatMessage, "paused" | "paused_models">;

/** Only the pause fields of `msg`, those it has (what both ends copy into a hello or a state). */
export function pauseOf(msg: PauseFields): PauseFields {
  return {
    ...(msg.paused === undefined ? {} : { paused: msg.paused }),
    ...(msg.paused_models === undefined ? {} : { paused_models: msg.paused_models }),
  };
}

/** daemon → relay: stop routing new work here; in-flight work still finishes. */
export interface DrainMessage {
  type: "drain";
  v: number;
}

/** relay → daemon, the answer to `hello`. */
export interface WelcomeMessage {
  type: "welcome";
  v: number;
  /** Relay-assigned id of this connection, for logs on both sides. */
  connection_id: string;
  /** The member the key belongs to. */
  member: string;
  /** The heartbeat interval the relay expects, in milliseconds. */
  heartbeat_ms: number;
}

/** relay → daemon: something about the connection is wrong; `fatal` ones are followed by a close. */
export interface ErrorMessage {
  type: "error";
  v: number;
  code: string;
  message: string;
  fatal: boolean;
}

export type DaemonMessage = HelloMessage | HeartbeatMessage | DrainMessage;
export type RelayMessage = WelcomeMessage | ErrorMessage;
export type ControlMessage = DaemonMessage | RelayMessage;

/** Largest control message either side accepts (a manifest of 1000 models fits). */
export const MAX_CONTROL_BYTES = 1024 * 1024;

/** Bounds a receiver applies to control messages; the relay lets operators lower them. */
export interface ControlLimits {
  /** Largest message in bytes (default and ceiling `MAX_CONTROL_BYTES`). */
  maxBytes: number;
  /** Most models one manifest may advertise, over all its services (default 1000). */
  maxModels: number;
}

export const DEFAULT_CONTROL_LIMITS: ControlLimits = {
  maxBytes: MAX_CONTROL_BYTES,
  maxModels: 1000,
};

/** A control message that failed validation; the text names the field. */
export const ControlMessageError = SchemaError;

// Names appear in every log line about a provider: they stay short.
const name = str({ min: 1, max: 128 });
const count = num({ min: 0, max: 1e9, integer: true });
const knownFeatures = new Set<string>(FEATURES);
/** Feature flags this version knows; unknown ones (a newer daemon's) are dropped, not refused. */
const features: Check<Feature[]> = (v, path) =>
  list(str({ max: 64 }), 32)(v, path).filter((f): f is Feature => knownFeatures.has(f));

const memberName = str({ min: 1, max: 128 });
const access: Check<Access> = (v, path) =>
  Array.isArray(v)
    ? list(memberName, MAX_ACCESS_MEMBERS)(v, path)
    : oneOf(["private", "club"])(v, path);

const manifestModel = obj(
  {
    id: str({ min: 1, max: 256 }),
    input_modalities: list(str({ max: 32 }), 16),
    output_modalities: list(str({ max: 32 }), 16),
    features,
    context_length: nullable(num({ min: 0, max: 1e9, integer: true })),
  },
  {
    name: str({ max: 256 }),
    quantization: str({ max: 64 }),
    access,
    state: oneOf<EngineState>(ENGINE_STATES),
  },
);

const manifestService = obj(
  {
    name,
    engine: oneOf(MANIFEST_ENGINES),
    type: oneOf(SERVICE_TYPES),
    features,
    max_concurrent: num({ min: 0, max: 100_000, integer: true }),
    models: list(manifestModel, DEFAULT_CONTROL_LIMITS.maxModels),
  },
  { resource_group: name, access },
);

const manifestGpu = obj({
  vendor: oneOf(["nvidia", "amd", "apple", "intel"] as const),
  model: str({ max: 256 }),
  vram_gb: num({ min: 0, max: 1e6 }),
  index: num({ min: 0, max: 1024, integer: true }),
});

const manifestShape = obj({
  schema_version: num({ min: 1, max: 1, integer: true }),
  agent: obj({ name }),
  hosts: list(
    obj(
      { id: name, gpus: list(manifestGpu, 64), services: list(manifestService, 256) },
      { hostname: str({ max: 256 }) },
    ),
    16,
  ),
});

function checkManifest(v: unknown, path: string, limits: ControlLimits): Manifest {
  const m = manifestShape(v, path) as Manifest;
  let models = 0;
  for (const host of m.hosts) for (const service of host.services) models += service.models.length;
  if (models > limits.maxModels)
    throw new ControlMessageError(
      `${path} advertises ${models} models; this relay takes at most ${limits.maxModels}`,
    );
  return m;
}

const maybe = <T>(check: Check<T>): Check<T | null> => nullable(check);
const gpuLoad = obj({
  index: num({ min: 0, max: 1024, integer: true }),
  vram_used_mb: maybe(num({ min: 0, max: 1e9 })),
  utilization_pct: maybe(num({ min: 0, max: 100 })),
  temperature_c: maybe(num({ min: -100, max: 1000 })),
  power_w: maybe(num({ min: 0, max: 1e6 })),
});
const serviceLoad = obj({ in_flight: count, queued: count, up: bool });

const reason = str({ min: 1, max: 256 });
const pausedModels: Check<Record<string, string>> = record(reason, {
  max: DEFAULT_CONTROL_LIMITS.maxModels,
  key: str({ min: 1, max: 256 }),
});
const hello = obj(
  { provider: obj({ name, version: str({ max: 64 }) }) },
  { paused: reason, paused_models: pausedModels },
);
const heartbeat = obj(
  {
    seq: count,
    in_flight: count,
    queued: count,
    services: record(serviceLoad, { max: 256, key: name }),
    gpus: list(gpuLoad, 64),
  },
  { paused: reason, paused_models: pausedModels },
);
const welcome = obj({
  connection_id: str({ min: 1, max: 64 }),
  member: str({ max: 256 }),
  heartbeat_ms: num({ min: 0, max: Number.MAX_SAFE_INTEGER }),
});
const error = obj({ code: str({ max: 64 }), message: str({ max: 4096 }), fatal: bool });

/**
 * Parses and checks one control message against the schema above, field by field; the result
 * holds only the fields the schema knows. Unknown message types are an error: a peer that
 * sends them speaks another protocol version, which the subprotocol should have caught.
 */
export function parseControl(
  text: string,
  limits: ControlLimits = DEFAULT_CONTROL_LIMITS,
): ControlMessage {
  if (Buffer.byteLength(text) > limits.maxBytes)
    throw new ControlMessageError(
      `control message too large: ${Buffer.byteLength(text)} bytes; the limit is ${limits.maxBytes}`,
    );
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    throw new ControlMessageError("control message is not valid JSON");
  }
  if (!isPlainObject(msg) || typeof msg.type !== "string")
    throw new ControlMessageError("control message must be an object with a string type");
  const type = msg.type.slice(0, 32);
  if (msg.v !== PROTOCOL_VERSION)
    throw new ControlMessageError(
      `${type}: unsupported protocol version ${String(msg.v).slice(0, 16)}`,
    );
  const v = PROTOCOL_VERSION;
  switch (type) {
    case "hello": {
      // The manifest first: it is what a peer most often gets wrong.
      const manifest = checkManifest(msg.manifest, "hello.manifest", limits);
      return { type, v, ...hello(msg, "hello"), manifest };
    }
    case "heartbeat": {
      const out: HeartbeatMessage = { type, v, ...heartbeat(msg, "heartbeat") };
      if (msg.manifest !== undefined)
        out.manifest = checkManifest(msg.manifest, "heartbeat.manifest", limits);
      return out;
    }
    case "drain":
      return { type, v };
    case "welcome":
      return { type, v, ...welcome(msg, "welcome") };
    case "error":
      return { type, v, ...error(msg, "error") };
    default:
      throw new ControlMessageError(`unknown control message type ${JSON.stringify(type)}`);
  }
}

/** A message as its sender writes it; `encodeControl` adds the version. */
export type Unversioned<T> = T extends unknown ? Omit<T, "v"> : never;

/** Serialises a control message; the one place messages are stamped with the version. */
export function encodeControl(msg: Unversioned<ControlMessage>): string {
  return JSON.stringify({ ...msg, v: PROTOCOL_VERSION });
}
