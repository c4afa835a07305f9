/** What the benchmark processes share: the model id, the clock, statistics, request bodies. */

/** The model the fake upstream serves. */
export const MODEL = "bench-model";
/** The path every benchmark request goes to. */
export const PATH = "/v1/chat/completions";

/** The small chat completion the fake upstream answers (and in-process benches stand in for). */
export const SMALL_ANSWER = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1700000000,
  model: MODEL,
  choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
});

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The `p` quantile (0..1) of `values` (nearest rank); NaN when empty. */
export function quantile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
}

/** The middle value; NaN when empty. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** A chat request body; `bench` steers the fake upstream. */
export function body(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], ...extra });
}

/** Headers for a target: the tunnel path needs the member's key, the others ignore it. */
export function headers(key: string | undefined): Record<string, string> {
  return {
    "content-type": "application/json",
    ...(key ? { authorization: `Bearer ${key}` } : {}),
  };
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
