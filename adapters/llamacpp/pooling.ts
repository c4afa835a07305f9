/**
 * What a llama-server's model is for, asked of the server itself: `/props` of this build says
 * nothing about `--embeddings`, `--pooling` or `--reranking`, so a one-word `POST /v1/rerank`
 * and `POST /v1/embeddings` tell. Without the flag each answers 501 `not_supported_error` at
 * once, before any token is read; with it, a one-token pooling pass (engines.md §1, captures).
 */
import type { ServiceType } from "../../src/protocol/index.ts";
import type { Upstream } from "../adapter.ts";
import { postJson } from "../kit/openai-style.ts";

/** The model's service type: `rerank` (`--reranking`), `embedding` (`--embeddings`), else `llm`. */
export async function poolingType(
  upstream: Upstream,
  signal: AbortSignal,
  model?: string,
): Promise<ServiceType> {
  const named = model === undefined ? {} : { model };
  const ok = (path: string, body: Record<string, unknown>) =>
    postJson(upstream, path, { ...named, ...body }, signal).then(
      (answer) => answer.status === 200,
      () => false,
    );
  // --reranking implies --embeddings, so rerank is asked first.
  if (await ok("/v1/rerank", { query: "a", documents: ["b"] })) return "rerank";
  // Pooling `none` answers 400 on /v1/embeddings: such a server serves no OpenAI embeddings.
  if (await ok("/v1/embeddings", { input: "a" })) return "embedding";
  return "llm";
}
