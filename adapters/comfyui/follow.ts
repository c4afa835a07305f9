/**
 * Following one prompt on ComfyUI's WebSocket (`/ws?clientId=`): progress for the daemon's
 * status, and the moment it ends or fails. Message shapes (engines.md §6, C1/C2, and ComfyUI
 * 0.3.64 as recorded): `{type, data}` with `execution_start`, `executing` per node (`node:
 * null` once the prompt is done, after `execution_success`), `progress` (`value`, `max`; only
 * from nodes with a progress bar), `execution_success`, `execution_error`,
 * `execution_interrupted`; `status`, `execution_cached`, `progress_state` and `executed` are
 * not needed here. Binary frames are previews, ignored.
 */
import type WebSocket from "ws";
import { UpstreamError } from "../../src/errors.ts";
import type { Upstream } from "../adapter.ts";
import { obj, str } from "../kit/fields.ts";
import type { Graph } from "./workflow.ts";

/** What the socket said last about our prompt. */
export type Outcome =
  { kind: "done" } | { kind: "failed"; error: UpstreamError } | { kind: "lost" };

/** Connecting is quick on a LAN; a socket that does not open soon is not coming. */
const OPEN_TIMEOUT_MS = 5_000;

/** The `ws://` URL of a ComfyUI at `upstream` (keeping a path prefix) for `clientId`. */
export function socketUrl(upstream: Upstream, clientId: string): string {
  const url = new URL(upstream.url);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/ws`;
  url.search = `?clientId=${encodeURIComponent(clientId)}`;
  return url.toString();
}

/** A ComfyUI socket, keeping what it said before we knew our prompt's id. */
export interface PromptSocket {
  ws: WebSocket;
  /** Messages received so far, until `follow` takes over. */
  backlog: Record<string, unknown>[];
}

function parse(raw: WebSocket.RawData): Record<string, unknown> | undefined {
  const bytes = Buffer.isBuffer(raw)
    ? raw
    : Array.isArray(raw)
      ? Buffer.concat(raw)
      : Buffer.from(new Uint8Array(raw));
  try {
    return obj(JSON.parse(bytes.toString("utf8")));
  } catch {
    return undefined;
  }
}

/**
 * Opens the socket, or resolves undefined when it cannot (the caller polls instead). It is
 * open before the prompt is sent, and keeps every message: ComfyUI may start (even finish) a
 * prompt before its `POST /prompt` answer arrives.
 */
export async function openSocket(
  upstream: Upstream,
  clientId: string,
): Promise<PromptSocket | undefined> {
  // Loaded on first use: a rig without ComfyUI never holds ws's code.
  const { default: WebSocket } = await import("ws");
  return new Promise((resolve) => {
    const headers: Record<string, string> = {};
    if (upstream.apiKey) headers.authorization = `Bearer ${upstream.apiKey}`;
    const ws = new WebSocket(socketUrl(upstream, clientId), {
      headers,
      perMessageDeflate: false,
      handshakeTimeout: OPEN_TIMEOUT_MS,
    });
    const socket: PromptSocket = { ws, backlog: [] };
    ws.on("message", (raw, binary) => {
      const message = binary ? undefined : parse(raw);
      if (message) socket.backlog.push(message);
    });
    ws.once("open", () => resolve(socket));
    ws.once("error", () => {
      ws.terminate();
      resolve(undefined);
    });
  });
}

/** How a node is named in progress details: its title, else its class. */
function label(graph: Graph, node: unknown): string {
  const n = typeof node === "string" ? graph[node] : undefined;
  return n?._meta?.title ?? n?.class_type ?? "ComfyUI";
}

/** The error of an `execution_error` message (from the socket or `/history`). */
export function executionError(data: Record<string, unknown>): UpstreamError {
  const id = data.node_id;
  const node = typeof id === "string" || typeof id === "number" ? String(id) : "?";
  const where = `${str(data.node_type) ?? "a node"} (node ${node})`;
  const why = str(data.exception_message)?.trim() || "no message; see ComfyUI's log";
  return new UpstreamError("upstream_job_failed", `ComfyUI failed in ${where}: ${why}`);
}

/**
 * Follows `promptId` on the socket, its backlog first: reports progress through `report`, and
 * calls `settle` once with how it ended (`lost` when the socket closed first).
 */
export function follow(
  socket: PromptSocket,
  promptId: string,
  graph: Graph,
  report: (fraction: number | null, detail: string) => void,
  settle: (outcome: Outcome) => void,
): void {
  let running = false;
  let settled = false;
  const end = (outcome: Outcome): void => {
    if (settled) return;
    settled = true;
    settle(outcome);
  };
  const handle = (message: Record<string, unknown>): void => {
    const data = obj(message.data);
    const id = str(data.prompt_id);
    // Older builds leave prompt_id out of `progress`; it then belongs to the running prompt.
    const ours = id === promptId || (id === undefined && running);
    if (!ours) return;
    switch (message.type) {
      case "execution_start":
        running = true;
        report(0, "started");
        break;
      case "executing":
        running = true;
        if (data.node === null) end({ kind: "done" });
        else report(null, `running ${label(graph, data.node)}`);
        break;
      case "progress": {
        const { value, max } = data;
        if (typeof value === "number" && typeof max === "number" && max > 0)
          report(value / max, `${label(graph, data.node)} ${value}/${max}`);
        break;
      }
      case "execution_success":
        end({ kind: "done" });
        break;
      case "execution_error":
        end({ kind: "failed", error: executionError(data) });
        break;
      case "execution_interrupted":
        end({
          kind: "failed",
          error: new UpstreamError("upstream_job_failed", "ComfyUI interrupted the prompt"),
        });
        break;
    }
  };
  const backlog = socket.backlog.splice(0);
  socket.backlog = [];
  for (const message of backlog) handle(message);
  socket.ws.removeAllListeners("message");
  socket.ws.on("message", (raw, binary) => {
    const message = binary ? undefined : parse(raw);
    if (message) handle(message);
  });
  socket.ws.on("close", () => end({ kind: "lost" }));
  socket.ws.on("error", () => undefined);
}
