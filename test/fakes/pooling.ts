/**
 * Embeddings and rerank answers for the fake engines, in the OpenAI shape llama-server, vLLM and
 * Ollama share: `{object:"list", data:[{object:"embedding", index, embedding}], model, usage}`
 * with `encoding_format: "base64"` as little-endian float32 bytes, and the Jina/Cohere rerank
 * shape `{model, object:"list", usage, results:[{index, relevance_score}]}`. Vectors are made
 * from the text, so equal inputs give equal vectors and tests can tell inputs apart.
 */

type Json = Record<string, unknown>;

/** A deterministic unit vector for `text`, `dims` long. */
export function vectorOf(text: string, dims: number): number[] {
  const v = Array.from({ length: dims }, (_, i) => {
    let h = 2166136261 ^ i;
    for (const ch of text) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
    return ((h >>> 0) % 2000) / 1000 - 1;
  });
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => Math.fround(x / norm));
}

/** The float32 little-endian bytes of a vector, base64: OpenAI's `encoding_format: "base64"`. */
export function base64Of(vector: number[]): string {
  return Buffer.from(new Float32Array(vector).buffer).toString("base64");
}

function tokens(text: string): number {
  return text.split(/\s+/).filter(Boolean).length || 1;
}

/**
 * An embeddings answer for `request`, or an error message when `input` is missing. `dimensions`
 * truncates and renormalises, as engines with Matryoshka models do, when `allowDimensions`.
 */
export function embeddingsBody(
  request: Json,
  model: string,
  dims: number,
  allowDimensions = true,
): Json | string {
  const input = request.input;
  const texts =
    typeof input === "string" ? [input] : Array.isArray(input) ? input.map(String) : undefined;
  if (!texts || texts.length === 0) return "'input' is required";
  const wanted =
    typeof request.dimensions === "number" && allowDimensions ? request.dimensions : dims;
  const base64 = request.encoding_format === "base64";
  const data = texts.map((text, index) => {
    const vector = vectorOf(text, wanted);
    return { object: "embedding", index, embedding: base64 ? base64Of(vector) : vector };
  });
  const used = texts.reduce((n, t) => n + tokens(t), 0);
  return { object: "list", data, model, usage: { prompt_tokens: used, total_tokens: used } };
}

/** A rerank answer: documents scored by the words they share with the query, best first. */
export function rerankBody(request: Json, model: string): Json | string {
  const query = typeof request.query === "string" ? request.query : undefined;
  const docs = Array.isArray(request.documents) ? request.documents.map(String) : undefined;
  if (query === undefined || !docs) return "'query' and 'documents' are required";
  const words = new Set(query.toLowerCase().split(/\W+/).filter(Boolean));
  const results = docs
    .map((doc, index) => {
      const shared = doc
        .toLowerCase()
        .split(/\W+/)
        .filter((w) => words.has(w)).length;
      return { index, relevance_score: shared / (shared + 1) };
    })
    .sort((a, b) => b.relevance_score - a.relevance_score);
  const topN = typeof request.top_n === "number" ? request.top_n : results.length;
  const used = tokens(query) + docs.reduce((n, d) => n + tokens(d), 0);
  return {
    model,
    object: "list",
    usage: { prompt_tokens: used, total_tokens: used },
    results: results.slice(0, topN),
  };
}
