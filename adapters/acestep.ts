/**
 * ACE-Step 1.5's API server (`acestep.api_server`, engines.md §9; its docs/en/API.md and
 * acestep/api/http/*): music from a prompt and lyrics. Every answer is wrapped as `{data, code,
 * error, timestamp, extra}`; `GET /health` (public) says `data.service: "ACE-Step API"` and
 * `models_initialized`; `GET /v1/models` (key-protected) lists the DiT models, each one a
 * `music` model here (those not loaded are left out when the server says which are).
 *
 * A call is `POST /release_task`, `POST /query_result` polled until `status` is 1 (done) or 2
 * (failed), then the audio of the result's `file` (`/v1/audio?path=…`) streamed back as raw
 * bytes. Only fields of the club's music request reach the engine (see `./acestep/request.ts`),
 * with `batch_size: 1`. ACE-Step has no way to cancel a task: an aborted call stops polling and
 * never fetches the audio; the engine finishes the track.
 */
import { UpstreamError } from "../src/errors.ts";
import { badRequest } from "../src/http/error.ts";
import type {
  Adapter,
  DiscoveredModel,
  EngineCall,
  EngineReply,
  ProbeResult,
  ServiceInfo,
  Upstream,
} from "./adapter.ts";
import { audioPath, musicBody, MUSIC_TYPES, taskState } from "./acestep/request.ts";
import { serving } from "./kit/reply.ts";
import { keyRefused, loading, no, ready, refused } from "./kit/engine.ts";
import { arr, errorMessage, obj, str } from "./kit/fields.ts";
import { longReply, pause, pollMs } from "./kit/job.ts";
import { forwardOpenAI, getJson, postJson, type JsonAnswer } from "./kit/openai-style.ts";

const LABEL = { name: "ACE-Step", hint: "is acestep-api running?" };

/** The `data` of a wrapped answer, or undefined when the answer is not one. */
function unwrap(answer: JsonAnswer): Record<string, unknown> | undefined {
  const body = obj(answer.json);
  return "data" in body && "code" in body && "timestamp" in body ? obj(body.data) : undefined;
}

/** Why ACE-Step refused: `error` of the wrapper, or FastAPI's `detail`. */
function why(answer: JsonAnswer): string {
  const body = obj(answer.json);
  return str(body.error) ?? str(body.detail) ?? errorMessage(body) ?? `status ${answer.status}`;
}

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const health = await getJson(upstream, "/health", signal);
  const data = unwrap(health);
  if (health.status !== 200 || !data || !/ACE-Step/i.test(str(data.service) ?? ""))
    return no("GET /health: not ACE-Step's wrapped {data, code} answer");
  if (data.models_initialized === false)
    return loading("ACE-Step is loading its models (GET /health: models_initialized false)");
  const models = await getJson(upstream, "/v1/models", signal);
  if (refused(models.status)) return keyRefused(models.status, upstream, "ACE-Step");
  return ready(`GET /health: ${str(data.service) ?? "ACE-Step API"} (wrapped answer)`);
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  const answer = await getJson(upstream, "/v1/models", signal);
  const data = unwrap(answer);
  if (answer.status !== 200 || !data)
    throw new UpstreamError(
      "upstream_bad_answer",
      `ACE-Step at ${upstream.url}: GET /v1/models answers ${answer.status} (${why(answer)})`,
    );
  const listed = arr(data.models).map(obj);
  const loaded = listed.filter((m) => m.is_loaded !== false);
  const names = (loaded.length ? loaded : listed).map((m) => str(m.name)).filter((n) => !!n);
  const ids = names.length ? names : [str(data.default_model) ?? "acestep"];
  const model = (id: string): DiscoveredModel => ({
    id,
    servedId: id,
    type: "music",
    inputModalities: ["text"],
    outputModalities: ["audio"],
    features: [],
    contextLength: null,
  });
  return {
    engine: "other",
    label: "ACE-Step API",
    maxConcurrent: 1,
    models: [...new Set(ids as string[])].map(model),
  };
}

/** Submits the task; resolves with its id, or the 4xx reply to give the consumer. */
async function release(call: EngineCall, body: Record<string, unknown>): Promise<string> {
  const answer = await postJson(call.upstream, "/release_task", body, call.signal, 60_000);
  const data = unwrap(answer);
  const id = str(data?.task_id);
  if (answer.status === 200 && obj(answer.json).code === 200 && id) return id;
  const message = `ACE-Step refused the task: ${why(answer)}`;
  if (answer.status === 400 || answer.status === 422 || obj(answer.json).code === 400)
    throw badRequest(message);
  throw new UpstreamError("upstream_bad_answer", message);
}

/** Polls the task until it is done; resolves with its audio's path on the engine. */
async function waitFor(call: EngineCall, id: string): Promise<string> {
  call.progress?.(null, "queued");
  for (;;) {
    const answer = await postJson(
      call.upstream,
      "/query_result",
      { task_id_list: [id] },
      call.signal,
      60_000,
    );
    if (answer.status !== 200 || !unwrap(answer))
      throw new UpstreamError(
        "upstream_bad_answer",
        `ACE-Step: POST /query_result: ${why(answer)}`,
      );
    const state = taskState(obj(arr(obj(answer.json).data)[0]));
    if (state.kind === "failed")
      throw new UpstreamError("upstream_job_failed", `ACE-Step failed: ${state.why}`);
    if (state.kind === "done") return state.path;
    call.progress?.(state.fraction, state.detail);
    await pause(pollMs(), call.signal);
  }
}

async function generate(call: EngineCall): Promise<EngineReply> {
  const { body, format } = musicBody(call.json ?? {}, call.model.servedId);
  const id = await release(call, body);
  const type = MUSIC_TYPES[format] ?? "application/octet-stream";
  return longReply(call, type, async () => {
    const path = await waitFor(call, id);
    const { json: _json, stream: _stream, ...rest } = call;
    const reply = await forwardOpenAI(
      {
        ...rest,
        endpoint: { ...call.endpoint, method: "GET" },
        path: audioPath(path),
        headers: {},
      },
      LABEL,
    );
    if (reply.status !== 200) {
      reply.body.resume();
      throw new UpstreamError(
        "upstream_bad_answer",
        `ACE-Step answered ${reply.status} to GET /v1/audio`,
      );
    }
    const engineType = reply.headers["content-type"] ?? "";
    reply.headers["content-type"] = engineType.startsWith("audio/") ? engineType : type;
    return reply;
  });
}

/** The ACE-Step adapter: `music` models, one job at a time, raw audio back. */
export default function acestep(): Adapter {
  return {
    name: "acestep",
    displayName: "ACE-Step API",
    defaultPorts: [8001],
    probe,
    describe,
    ...serving("ACE-Step API", { "/v1/music/generations": generate }),
  };
}
