/**
 * The requests in flight on this rig and how far they got, for the daemon's `/status` and the
 * rig's page: who asked, the bytes and streamed tokens sent so far, and, for long jobs (images,
 * video, music, meshes), the fraction their engines report through `EngineCall.progress`.
 */
import type { RigJob } from "../ui/browser/rig-types.ts";

/**
 * One request in flight, as `/status` and the rig's page show it: the page's own type
 * (`RigJob`, types only), so the two cannot drift apart.
 */
export type JobStatus = RigJob;

/** What the gateway holds for one request: report progress and bytes sent, then end it once. */
export interface JobHandle {
  readonly report: (fraction: number | null, detail?: string) => void;
  /**
   * A piece of the answer went out; `events`: the answer is a Server-Sent Events stream. Always
   * bytes: the gateway turns any text an engine reply yields into its UTF-8 Buffer first.
   */
  readonly sent: (chunk: Buffer, events: boolean) => void;
  /**
   * Lists it no more; returns the tokens the answer generated: its `usage.completion_tokens`
   * when the answer reported one near its end (JSON, or a stream's last usage chunk), else the
   * text events streamed, else null.
   */
  readonly end: () => number | null;
}

/** Bytes of an answer's end kept to find its `usage` (llama.cpp puts `timings` after it). */
const TAIL = 4096;
const COMPLETION_TOKENS = /"completion_tokens"\s*:\s*(\d{1,12})/g;

/** The last `completion_tokens` figure in `tail`, or undefined. */
export function completionTokens(tail: string): number | undefined {
  let found: number | undefined;
  for (const m of tail.matchAll(COMPLETION_TOKENS)) found = Number(m[1]);
  return found;
}

/** Longest event line read for text; a longer one (a huge tool call) is not counted. */
const MAX_LINE = 64 * 1024;
/** A `data:` line of an OpenAI-style chunk that carries text (not `"content":null`). */
const TEXT_FIELD = /"(?:content|text|reasoning_content)":"(?:[^"\\]|\\.)/;

/**
 * Counts the `data:` lines of a Server-Sent Events stream that carry text: one per token for
 * llama.cpp, vLLM and Ollama's OpenAI streams. Holds at most one line of `MAX_LINE` bytes.
 */
export class TokenCounter {
  count = 0;
  #line = "";
  #long = false;

  push(chunk: Buffer): void {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(10, from);
      const end = nl < 0 ? chunk.length : nl;
      if (!this.#long) {
        this.#line += chunk.toString("utf8", from, end);
        if (this.#line.length > MAX_LINE) {
          this.#long = true;
          this.#line = "";
        }
      }
      if (nl < 0) return;
      if (!this.#long && this.#line.startsWith("data:") && TEXT_FIELD.test(this.#line))
        this.count++;
      this.#line = "";
      this.#long = false;
      from = nl + 1;
    }
  }
}

/**
 * The registry. `begin` lists a request until its handle's `end`.
 * @example
 * const job = registry.begin({ request_id: "req_1", model: "sdxl", endpoint, service, member: null });
 * job.report(0.5, "KSampler 15/30");
 * job.end();
 */
export class ProgressRegistry {
  readonly #jobs = new Map<number, JobStatus>();
  #next = 0;

  begin(
    info: Pick<JobStatus, "request_id" | "model" | "endpoint" | "service" | "member">,
  ): JobHandle {
    const key = this.#next++;
    const job: JobStatus = {
      ...info,
      started: Math.floor(Date.now() / 1000),
      bytes: 0,
      tokens: null,
      progress: null,
      detail: null,
    };
    this.#jobs.set(key, job);
    let counter: TokenCounter | undefined;
    // The answer's last chunks, by reference, covering at least its last `TAIL` bytes: decoded
    // once, at the end, not on every chunk of a long answer.
    const recent: Buffer[] = [];
    let head = 0; // chunks before `head` are no longer needed
    let recentBytes = 0;
    return {
      report: (fraction, detail) => {
        job.progress = fraction === null ? null : Math.min(1, Math.max(0, fraction));
        if (detail !== undefined) job.detail = detail;
      },
      sent: (chunk, events) => {
        job.bytes += chunk.length;
        recent.push(chunk);
        recentBytes += chunk.length;
        for (let first = recent[head]; first && recentBytes - first.length >= TAIL;) {
          recentBytes -= first.length;
          first = recent[++head];
        }
        if (head >= 64) {
          recent.splice(0, head);
          head = 0;
        }
        if (!events) return;
        counter ??= new TokenCounter();
        counter.push(chunk);
        job.tokens = counter.count;
      },
      end: () => {
        this.#jobs.delete(key);
        const tail = Buffer.concat(recent.slice(head), recentBytes)
          .subarray(-TAIL)
          .toString("latin1");
        return completionTokens(tail) ?? job.tokens;
      },
    };
  }

  /** The requests in flight, oldest first. */
  list(): JobStatus[] {
    return [...this.#jobs.values()].map((job) => ({ ...job }));
  }
}
