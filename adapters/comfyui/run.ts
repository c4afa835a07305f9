/**
 * Running one graph on ComfyUI: `POST /prompt`, then waiting for its `/history/{id}` entry,
 * told by the WebSocket when it ends (polling `/history` when the socket is lost or never
 * opened). A call that is aborted cancels the prompt: `POST /queue {"delete": [id]}` while it
 * waits, `POST /interrupt {"prompt_id": id}` while it runs (ComfyUI server.py, engines.md §6).
 */
import { randomUUID } from "node:crypto";
import { UpstreamError } from "../../src/errors.ts";
import type { EngineCall, Upstream } from "../adapter.ts";
import { arr, obj, str } from "../kit/fields.ts";
import { pollMs } from "../kit/job.ts";
import { getJson, postJson } from "../kit/openai-style.ts";
import { executionError, follow, openSocket, type Outcome } from "./follow.ts";
import type { Prepared } from "./params.ts";
import { refusal } from "./refusal.ts";

/** While the socket is up it says when the prompt ends; this poll is only a safety net. */
const SOCKET_POLL_FACTOR = 30;

async function submit(
  call: EngineCall,
  source: string,
  run: Prepared,
  clientId: string,
): Promise<string> {
  // Not the call's signal: once ComfyUI has the prompt we must learn its id to cancel it.
  const answer = await postJson(
    call.upstream,
    "/prompt",
    { prompt: run.graph, client_id: clientId },
    AbortSignal.timeout(60_000),
    60_000,
  );
  const id = str(obj(answer.json).prompt_id);
  if (answer.status === 200 && id) return id;
  if (answer.status === 400) throw refusal(answer.json, run.written, source);
  throw new UpstreamError(
    "upstream_bad_answer",
    `ComfyUI at ${call.upstream.url} answered ${answer.status} to POST /prompt`,
  );
}

/** The entry of `/history/{id}` once the prompt is there; throws for a prompt that failed. */
async function historyEntry(
  upstream: Upstream,
  id: string,
  signal: AbortSignal,
): Promise<Record<string, unknown> | undefined> {
  const answer = await getJson(upstream, `/history/${encodeURIComponent(id)}`, signal, 30_000);
  const entry = obj(answer.json)[id];
  if (entry === undefined) return undefined;
  const status = obj(obj(entry).status);
  if (status.status_str === "error") {
    const events = arr(status.messages).map(arr);
    const error = events.find((e) => e[0] === "execution_error")?.[1];
    if (error !== undefined) throw executionError(obj(error));
    throw new UpstreamError("upstream_job_failed", "ComfyUI stopped the prompt (interrupted?)");
  }
  return obj(entry);
}

/** Whether a `/queue` list holds `id` (entries are `[number, prompt_id, …]`). */
function holds(list: unknown, id: string): boolean {
  return arr(list).some((e) => (Array.isArray(e) ? e[1] : obj(e).prompt_id) === id);
}

/** Whether ComfyUI's queue still has `id`, running or waiting. */
async function queued(upstream: Upstream, id: string, signal: AbortSignal): Promise<boolean> {
  const queue = obj((await getJson(upstream, "/queue", signal, 30_000)).json);
  return holds(queue.queue_running, id) || holds(queue.queue_pending, id);
}

/** Removes `id` from ComfyUI's queue, or interrupts it if it runs. Best effort. */
export async function cancelPrompt(upstream: Upstream, id: string): Promise<void> {
  const signal = AbortSignal.timeout(5_000);
  try {
    const queue = obj((await getJson(upstream, "/queue", signal)).json);
    if (holds(queue.queue_pending, id))
      await postJson(upstream, "/queue", { delete: [id] }, signal);
    else if (holds(queue.queue_running, id))
      await postJson(upstream, "/interrupt", { prompt_id: id }, signal);
  } catch {
    // ComfyUI gone or slow: the prompt runs to its end and its files stay in its output folder.
  }
}

/**
 * Runs `run.graph` (from the workflow `source`) and resolves with its `/history` entry. Reports
 * progress through `call.progress`. Rejects with a 400 `HttpError` when ComfyUI refuses what the
 * request set, an `UpstreamError` when it refuses what the workflow fixed, fails or cannot be
 * reached, and the call's abort reason (after cancelling the prompt) when the call is aborted.
 */
export async function runGraph(
  call: EngineCall,
  source: string,
  run: Prepared,
): Promise<Record<string, unknown>> {
  const clientId = randomUUID().replaceAll("-", "");
  const ws = await openSocket(call.upstream, clientId);
  const socket: { outcome: Outcome | undefined; wake: () => void } = {
    outcome: ws ? undefined : { kind: "lost" },
    wake: () => undefined,
  };
  try {
    const id = await submit(call, source, run, clientId);
    call.progress?.(null, "queued");
    const aborted = new Promise<never>((_, reject) => {
      const onAbort = (): void => {
        void cancelPrompt(call.upstream, id);
        reject(call.signal.reason as Error);
      };
      if (call.signal.aborted) onAbort();
      else call.signal.addEventListener("abort", onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    if (ws)
      follow(
        ws,
        id,
        run.graph,
        (fraction, detail) => call.progress?.(fraction, detail),
        (outcome) => {
          socket.outcome = outcome;
          socket.wake();
        },
      );
    for (;;) {
      if (socket.outcome?.kind === "failed") throw socket.outcome.error;
      const entry = await Promise.race([historyEntry(call.upstream, id, call.signal), aborted]);
      if (entry) return entry;
      // Without the socket, a prompt neither queued nor in the history was lost (a restart).
      if (socket.outcome?.kind === "lost" && !(await queued(call.upstream, id, call.signal))) {
        const again = await historyEntry(call.upstream, id, call.signal);
        if (again) return again;
        throw new UpstreamError(
          "upstream_job_failed",
          "ComfyUI lost the prompt: it is neither queued nor done (was ComfyUI restarted?)",
        );
      }
      const wait = socket.outcome ? pollMs() : pollMs() * SOCKET_POLL_FACTOR;
      await Promise.race([
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          socket.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        }),
        aborted,
      ]);
    }
  } finally {
    socket.wake(); // clears a pending poll timer
    ws?.ws.close();
  }
}
