/**
 * Metering one forwarded answer: a pass-through stream between the provider's answer and the
 * consumer that counts the bytes sent on and reads what the engine said it used (`usage`
 * tokens, a transcription's `duration`, generated images) from JSON or SSE as it passes,
 * keeping nothing of the answer but a few counters (`usage-scan.ts`, `usage-sse.ts`).
 */
import { Transform } from "node:stream";
import type { UsageCounts } from "./jobs/store.ts";
import { JsonScanner } from "./usage-scan.ts";
import { SseUsage, mergeTokens, type Tokens } from "./usage-sse.ts";

/** Endpoints whose SSE streams report usage only when asked (`stream_options.include_usage`). */
export const USAGE_OPTION_ENDPOINTS: ReadonlySet<string> = new Set([
  "/v1/chat/completions",
  "/v1/completions",
]);

/** Who made a request and what it went to: what a meter's counts are booked under. */
export interface UsageTarget {
  member: string;
  model: string;
  /** The rig's name, and the member who owns it. */
  provider: string;
  owner: string;
}

/** Where a meter's counts go once the answer is over. */
export interface UsageSink {
  record(target: UsageTarget, counts: UsageCounts): void;
}

/** What `forward` is given to meter an answer. */
export interface UsageTap {
  sink: UsageSink;
  /** The endpoint's path (`/v1/images/generations`): what a generated item is. */
  endpoint: string;
  /** The relay asked for SSE usage the consumer did not: take the usage-only chunk out. */
  strip?: boolean;
}

const isJson = (type: string): boolean => /^application\/([\w.+-]*\+)?json\b/i.test(type);

/**
 * One answer's meter: `through(...)` or `seen(...)` while the answer passes, `record(...)` once
 * it is over.
 * @example
 * const meter = new UsageMeter(tap);
 * const through = meter.through(type);
 * if (through) stream.pipe(through).pipe(res);
 * else stream.on("data", (c) => meter.seen(c)).pipe(res);
 */
export class UsageMeter {
  #bytes = 0;
  #json: JsonScanner | undefined;
  #sse: SseUsage | undefined;
  #recorded = false;

  constructor(readonly tap: UsageTap) {}

  /**
   * The stream an SSE answer goes through to the consumer (it may take the usage-only chunk
   * out). Any other answer passes unchanged: undefined, and each of its chunks is given to
   * {@link seen} instead, which saves a stream per answer.
   */
  through(contentType: string): Transform | undefined {
    if (!contentType.startsWith("text/event-stream")) {
      if (isJson(contentType)) this.#json = new JsonScanner();
      return undefined;
    }
    const sse = (this.#sse = new SseUsage({ strip: this.tap.strip === true }));
    return new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        const out = sse.push(chunk);
        this.#bytes += out.length;
        done(null, out.length > 0 ? out : undefined);
      },
      flush: (done) => {
        const rest = sse.end();
        if (rest.length > 0) {
          this.#bytes += rest.length;
          done(null, rest);
        } else done();
      },
    });
  }

  /** A chunk of an answer that passes unchanged (no {@link through} stream), as it is sent on. */
  seen(chunk: Buffer): void {
    this.#json?.feed(chunk);
    this.#bytes += chunk.length;
  }

  /** Books the answer once: `status` is what the consumer got (502 when nothing came). */
  record(target: UsageTarget, status: number): void {
    if (this.#recorded) return;
    this.#recorded = true;
    const tokens: Tokens = { ...this.#sse?.tokens };
    const scanned = this.#json?.result() ?? {};
    mergeTokens(tokens, scanned.usage);
    const ok = status >= 200 && status < 300;
    const path = this.tap.endpoint;
    // A generation answered as bytes (not a JSON list) is one item.
    const items = scanned.dataItems ?? (this.#json ? 0 : 1);
    this.tap.sink.record(target, {
      requests: 1,
      errors: status >= 400 ? 1 : 0,
      prompt_tokens: tokens.prompt ?? 0,
      completion_tokens: tokens.completion ?? 0,
      audio_seconds: ok ? (scanned.duration ?? 0) : 0,
      images: ok && path.startsWith("/v1/images/") ? items : 0,
      videos: ok && path.startsWith("/v1/videos/") ? items : 0,
      bytes_out: this.#bytes,
    });
  }
}

/**
 * Asks the engine for a streamed answer's usage (`stream_options.include_usage`) on the
 * endpoints that report it only when asked; returns whether the relay asked on its own (the
 * consumer did not), so the usage-only chunk is to be taken out of what the consumer gets.
 */
export function askUsage(endpoint: string, json: Record<string, unknown>): boolean {
  if (!USAGE_OPTION_ENDPOINTS.has(endpoint)) return false;
  const given = json.stream_options;
  const options =
    typeof given === "object" && given !== null && !Array.isArray(given)
      ? (given as Record<string, unknown>)
      : given === undefined || given === null
        ? {}
        : undefined;
  // Options of another shape are the engine's to refuse, as they were sent.
  if (!options || options.include_usage === true) return false;
  json.stream_options = { ...options, include_usage: true };
  return true;
}
