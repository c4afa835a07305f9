import type { ServiceType } from "./manifest.ts";

/** How an endpoint's request body is carried, which decides how the model is found in it. */
export type BodyKind = "json" | "multipart" | "none";

/** One public inference endpoint of the club's API (`club-public-api.txt`, endpoint table). */
export interface Endpoint {
  method: "GET" | "POST";
  /** Path under `/v1`, without query. */
  path: string;
  body: BodyKind;
  /** The service type whose models serve it. */
  serviceType: ServiceType;
  /** Whether `"async": true` is documented for it. */
  async: boolean;
}

/** The inference endpoints a relay forwards and a daemon accepts. Nothing else crosses the tunnel. */
export const ENDPOINTS: readonly Endpoint[] = [
  { method: "POST", path: "/v1/chat/completions", body: "json", serviceType: "llm", async: true },
  { method: "POST", path: "/v1/completions", body: "json", serviceType: "llm", async: true },
  // Synchronous only for now: async jobs are not offered for the endpoints of issue 18.
  { method: "POST", path: "/v1/responses", body: "json", serviceType: "llm", async: false },
  { method: "POST", path: "/v1/messages", body: "json", serviceType: "llm", async: false },
  {
    method: "POST",
    path: "/v1/messages/count_tokens",
    body: "json",
    serviceType: "llm",
    async: false,
  },
  {
    method: "POST",
    path: "/v1/embeddings",
    body: "json",
    serviceType: "embedding",
    async: false,
  },
  { method: "POST", path: "/v1/rerank", body: "json", serviceType: "rerank", async: false },
  {
    method: "POST",
    path: "/v1/audio/transcriptions",
    body: "multipart",
    serviceType: "stt",
    async: false,
  },
  { method: "POST", path: "/v1/audio/speech", body: "json", serviceType: "tts", async: true },
  { method: "GET", path: "/v1/audio/voices", body: "none", serviceType: "tts", async: false },
  {
    method: "POST",
    path: "/v1/images/generations",
    body: "json",
    serviceType: "image",
    async: true,
  },
  {
    method: "POST",
    path: "/v1/images/edits",
    body: "multipart",
    serviceType: "image",
    async: false,
  },
  {
    method: "POST",
    path: "/v1/music/generations",
    body: "json",
    serviceType: "music",
    async: true,
  },
  {
    method: "POST",
    path: "/v1/videos/generations",
    body: "json",
    serviceType: "video",
    async: true,
  },
  { method: "POST", path: "/v1/voice/generations", body: "json", serviceType: "tts", async: false },
  {
    method: "POST",
    path: "/v1/3d/generations",
    body: "multipart",
    serviceType: "mesh",
    async: false,
  },
];

const byKey = new Map(ENDPOINTS.map((e) => [`${e.method} ${e.path}`, e]));

/** The endpoint for a method and path (query ignored), or undefined when it is not public. */
export function findEndpoint(method: string, path: string): Endpoint | undefined {
  const q = path.indexOf("?");
  return byKey.get(`${method} ${q === -1 ? path : path.slice(0, q)}`);
}

/** Body fields the club accepts for its own bookkeeping and strips before a provider sees them. */
export const SHARING_FIELDS = ["visibility", "collection"] as const;

/**
 * A JSON body without the club's own fields (`visibility`, `collection`, `async`): a copy
 * without them, or `body` itself when it has none (most calls; copying each cost more than
 * the rest of the relay's body handling).
 */
export function stripClubFields(body: Record<string, unknown>): Record<string, unknown> {
  const has = Object.hasOwn;
  if (!has(body, "visibility") && !has(body, "collection") && !has(body, "async")) return body;
  const { visibility: _visibility, collection: _collection, async: _async, ...rest } = body;
  return rest;
}
