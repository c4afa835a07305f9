/**
 * What the adapters of long jobs share (ComfyUI, ACE-Step, Dia, Hunyuan3D): a reply that holds
 * its status while the engine works and is committed early with keepalives when the job runs
 * long, polling with a pause, and a record of upstreams busy with a job of ours.
 *
 * Keepalives (docs/decisions.md): a reply keeps its real status as long as the job ends within
 * `keepaliveMs()`. After that, proxies in front of a relay may cut a silent response, so the
 * reply is committed: 200 with the success content-type. A JSON body then gets a space every
 * `keepaliveMs()` (JSON allows leading whitespace); a binary body cannot, so its headers are the
 * only early bytes. A job that fails after the commit cuts the body off: the consumer sees an
 * incomplete body, never a silent success, as with any stream that breaks.
 */
import { PassThrough, pipeline, type Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { UpstreamError } from "../../src/errors.ts";
import type { EngineCall, EngineReply } from "../adapter.ts";

/** Silence allowed before a reply is committed, and between keepalives after that. */
export function keepaliveMs(): number {
  // Undocumented: tests shorten it; 15 s stays well under the common 60 s proxy idle limits.
  return Number(process.env.CLUB_KEEPALIVE_MS) || 15_000;
}

/** Pause between two polls of an engine's job status. */
export function pollMs(): number {
  // Undocumented: tests shorten it.
  return Number(process.env.CLUB_POLL_MS) || 1_000;
}

/** Waits `ms`, or rejects with the signal's reason once `signal` aborts. */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal });
}

/** A binary reply the adapter writes itself. */
export function bytesReply(contentType: string, body: Readable, length?: string): EngineReply {
  const headers: Record<string, string> = { "content-type": contentType };
  if (length !== undefined) headers["content-length"] = length;
  return { status: 200, headers, body };
}

function failure(reply: EngineReply): UpstreamError {
  return new UpstreamError(
    "upstream_job_failed",
    `the engine answered ${reply.status} after the reply was committed`,
  );
}

/**
 * Runs a long job and resolves with its reply: the job's own when it ends within
 * `keepaliveMs()`, else a committed 200 `contentType` reply whose body carries the job's
 * output once it is there (see the file comment). Rejects like `job` until committed.
 * @example
 * return longReply(call, "video/mp4", () => renderAndFetch(call));
 */
export function longReply(
  call: EngineCall,
  contentType: string,
  job: () => Promise<EngineReply>,
): Promise<EngineReply> {
  const every = keepaliveMs();
  const json = contentType.startsWith("application/json");
  const running = job();
  return new Promise((resolve, reject) => {
    let body: PassThrough | undefined;
    let timer: NodeJS.Timeout | undefined;
    const stop = (): void => clearTimeout(timer);
    const commit = (): void => {
      const out = new PassThrough();
      body = out;
      out.on("close", stop);
      resolve(bytesReply(contentType, out));
      if (!json) return;
      const tick = (): void => {
        out.write(" ");
        timer = setTimeout(tick, every);
      };
      tick();
    };
    timer = setTimeout(commit, every);
    call.signal.addEventListener("abort", stop, { once: true });
    running.then(
      (reply) => {
        stop();
        if (!body) return resolve(reply);
        if (reply.status >= 300) {
          reply.body.resume();
          body.destroy(failure(reply));
          return;
        }
        pipeline(reply.body, body, () => undefined);
      },
      (err: unknown) => {
        stop();
        if (!body) return reject(err instanceof Error ? err : new Error(String(err)));
        body.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * Upstreams running a job of ours. Some engines (Dia-TTS-Server, Hunyuan3D-2) generate on their
 * event loop and answer nothing, probes included, until done; their adapters answer probes from
 * here meanwhile, so a busy engine is not taken for a dead one.
 */
export class BusyUpstreams {
  readonly #jobs = new Map<string, number>();

  /** Counts a job at `url` until the returned function is called. */
  begin(url: string): () => void {
    this.#jobs.set(url, (this.#jobs.get(url) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const left = (this.#jobs.get(url) ?? 1) - 1;
      if (left > 0) this.#jobs.set(url, left);
      else this.#jobs.delete(url);
    };
  }

  busy(url: string): boolean {
    return this.#jobs.has(url);
  }
}
