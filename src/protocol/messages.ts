import type { Manifest } from "./manifest.ts";
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

/** Largest control message either side accepts (a manifest with 100 services fits easily). */
export const MAX_CONTROL_BYTES = 1024 * 1024;

/** A control message that failed validation; the text names the field. */
export class ControlMessageError extends Error {
  readonly code = "bad_control_message";
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkManifest(m: unknown, where: string): Manifest {
  if (!isObject(m)) throw new ControlMessageError(`${where}: manifest must be an object`);
  if (m.schema_version !== 1)
    throw new ControlMessageError(`${where}: manifest.schema_version must be 1`);
  if (!isObject(m.agent) || typeof m.agent.name !== "string" || m.agent.name === "")
    throw new ControlMessageError(`${where}: manifest.agent.name must be a non-empty string`);
  if (!Array.isArray(m.hosts))
    throw new ControlMessageError(`${where}: manifest.hosts must be a list`);
  for (const [i, h] of m.hosts.entries()) {
    if (!isObject(h) || typeof h.id !== "string" || !Array.isArray(h.services))
      throw new ControlMessageError(
        `${where}: manifest.hosts[${i}] needs an id and a services list`,
      );
    for (const [j, s] of h.services.entries()) {
      if (!isObject(s) || typeof s.name !== "string" || !Array.isArray(s.models))
        throw new ControlMessageError(
          `${where}: manifest.hosts[${i}].services[${j}] needs a name and a models list`,
        );
      for (const [k, model] of s.models.entries()) {
        if (!isObject(model) || typeof model.id !== "string" || model.id === "")
          throw new ControlMessageError(
            `${where}: manifest.hosts[${i}].services[${j}].models[${k}].id must be a non-empty string`,
          );
      }
    }
  }
  return m as unknown as Manifest;
}

/**
 * Parses and checks one control message. Unknown message types are an error: a peer that
 * sends them speaks another protocol version, which the subprotocol should have caught.
 */
export function parseControl(text: string): ControlMessage {
  if (text.length > MAX_CONTROL_BYTES) throw new ControlMessageError("control message too large");
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    throw new ControlMessageError("control message is not valid JSON");
  }
  if (!isObject(msg) || typeof msg.type !== "string")
    throw new ControlMessageError("control message must be an object with a string type");
  if (msg.v !== PROTOCOL_VERSION)
    throw new ControlMessageError(`${msg.type}: unsupported protocol version ${String(msg.v)}`);
  switch (msg.type) {
    case "hello":
      if (!isObject(msg.provider) || typeof msg.provider.name !== "string")
        throw new ControlMessageError("hello: provider.name must be a string");
      checkManifest(msg.manifest, "hello");
      return msg as unknown as HelloMessage;
    case "heartbeat":
      if (typeof msg.seq !== "number" || !isObject(msg.services))
        throw new ControlMessageError("heartbeat: seq and services are required");
      if (msg.manifest !== undefined) checkManifest(msg.manifest, "heartbeat");
      return msg as unknown as HeartbeatMessage;
    case "drain":
      return msg as unknown as DrainMessage;
    case "welcome":
      if (typeof msg.connection_id !== "string" || typeof msg.heartbeat_ms !== "number")
        throw new ControlMessageError("welcome: connection_id and heartbeat_ms are required");
      return msg as unknown as WelcomeMessage;
    case "error":
      if (typeof msg.code !== "string" || typeof msg.message !== "string")
        throw new ControlMessageError("error: code and message are required");
      return msg as unknown as ErrorMessage;
    default:
      throw new ControlMessageError(`unknown control message type ${JSON.stringify(msg.type)}`);
  }
}

/** A message as its sender writes it; `encodeControl` adds the version. */
export type Unversioned<T> = T extends unknown ? Omit<T, "v"> : never;

/** Serialises a control message; the one place messages are stamped with the version. */
export function encodeControl(msg: Unversioned<ControlMessage>): string {
  return JSON.stringify({ ...msg, v: PROTOCOL_VERSION });
}
