/**
 * Dia-TTS-Server (devnen, engines.md §9; its server.py and engine.py): dialogue speech and
 * voice cloning. Recognised by `GET /api/model-info` (`loaded`, `supports_cloning`, …); the
 * model id is its `selector` (`dia-1.6b`, `dia2-2b`), a `tts` model with `voice-cloning`.
 *
 * `voice/generations` runs `POST /tts` (see `./dia/voice.ts`); a clip to clone is first put in
 * the server's reference folder with `POST /upload_reference` under a name of ours. The server
 * has no API to delete it: the clips of consumers stay in that folder (say so to operators).
 * `audio/speech` forwards to its OpenAI route with `voice` limited to S1, S2, dialogue and its
 * predefined voices (a file name could pick another consumer's clip). Dia generates on its
 * event loop, answering nothing until done; probes meanwhile are answered from our own record
 * of the job, and a cancelled call only closes its connection (Dia has no cancel).
 */
import { randomUUID } from "node:crypto";
import { badRequest } from "../src/http/error.ts";
import { Readable } from "node:stream";
import { UpstreamError } from "../src/errors.ts";
import type { Adapter, EngineCall, EngineReply, ServiceInfo, Upstream } from "./adapter.ts";
import { toVoices } from "./kit/audio.ts";
import { jsonReply, serving } from "./kit/reply.ts";
import { findVoice, readVoices, speakerVoice, ttsBody, type DiaVoice } from "./dia/voice.ts";
import { loading, no, ready } from "./kit/engine.ts";
import { arr, obj, str } from "./kit/fields.ts";
import { BusyUpstreams, longReply } from "./kit/job.ts";
import { decodeInline, formData, sniff } from "./kit/media.ts";
import { forwardOpenAI, getJson } from "./kit/openai-style.ts";

const LABEL = { name: "Dia-TTS-Server", hint: "is Dia-TTS-Server running?" };
const MAX_CLIP_BYTES = 32 * 1024 * 1024;
const SPEECH_FORMATS: Record<string, string> = { wav: "audio/wav", opus: "audio/opus" };

async function voices(upstream: Upstream, signal: AbortSignal): Promise<DiaVoice[]> {
  const answer = await getJson(upstream, "/get_predefined_voices", signal, 30_000);
  if (answer.status !== 200)
    throw new UpstreamError(
      "upstream_bad_answer",
      `Dia: GET /get_predefined_voices answers ${answer.status}`,
    );
  return readVoices(answer.json);
}

function request(call: EngineCall, path: string, rest: Partial<EngineCall>): Promise<EngineReply> {
  const { json: _json, stream: _stream, ...base } = call;
  return forwardOpenAI(
    { ...base, endpoint: { ...call.endpoint, method: "POST" }, path, headers: {}, ...rest },
    LABEL,
  );
}

/** Puts the clip in Dia's reference folder; resolves with its name there. */
async function upload(call: EngineCall, clip: Buffer): Promise<string> {
  const kind = sniff(clip);
  if (kind?.ext !== "wav" && kind?.ext !== "mp3")
    throw badRequest(`"audio_prompt" must be a WAV or MP3 clip`);
  const filename = `club-${randomUUID()}.${kind.ext}`;
  const { body, contentType } = formData([], {
    name: "files",
    filename,
    type: kind.type,
    bytes: clip,
  });
  const reply = await request(call, "/upload_reference", {
    headers: { "content-type": contentType, "content-length": String(body.length) },
    stream: Readable.from([body]),
  });
  let answer: Record<string, unknown> = {};
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of reply.body) chunks.push(chunk as Buffer);
    answer = obj(JSON.parse(Buffer.concat(chunks).toString("utf8")));
  } catch {
    // reported below
  }
  if (reply.status !== 200 || !arr(answer.uploaded_files).includes(filename))
    throw new UpstreamError(
      "upstream_bad_answer",
      `Dia did not take the clip (POST /upload_reference: ${reply.status} ${JSON.stringify(answer.errors ?? "")})`,
    );
  return filename;
}

/** The Dia-TTS-Server adapter. */
export default function dia(): Adapter {
  const busy = new BusyUpstreams();
  const described = new Map<string, ServiceInfo>();

  /** Runs one generation, counting the server busy until it answers. */
  async function generate(
    call: EngineCall,
    path: string,
    json: Record<string, unknown>,
    type: string,
  ): Promise<EngineReply> {
    return longReply(call, type, async () => {
      call.progress?.(null, "generating");
      const end = busy.begin(call.upstream.url);
      try {
        const reply = await request(call, path, { json });
        if (reply.status === 200) reply.headers["content-type"] ??= type;
        return reply;
      } finally {
        end();
      }
    });
  }

  async function voice(call: EngineCall): Promise<EngineReply> {
    const json = call.json ?? {};
    const hasClip = json.audio_prompt !== undefined && json.audio_prompt !== null;
    if (hasClip && json.speakers !== undefined && json.speakers !== null)
      throw badRequest(`send "speakers" or "audio_prompt", not both`);
    let choice: Parameters<typeof ttsBody>[1];
    if (hasClip) {
      ttsBody(json, undefined); // check the fields before uploading anything
      choice = {
        clone: await upload(call, decodeInline(json.audio_prompt, "audio_prompt", MAX_CLIP_BYTES)),
      };
    } else {
      const predefined = await speakerVoice(json.speakers, () =>
        voices(call.upstream, call.signal),
      );
      if (predefined) choice = { predefined };
    }
    return generate(call, "/tts", ttsBody(json, choice), "audio/wav");
  }

  async function speech(call: EngineCall): Promise<EngineReply> {
    const json = call.json ?? {};
    const format = json.response_format ?? "wav";
    if (typeof format !== "string" || !SPEECH_FORMATS[format])
      throw badRequest(`Dia-TTS-Server answers response_format wav or opus`);
    const name = typeof json.voice === "string" ? json.voice : "S1";
    const own = ["s1", "s2", "dialogue"].includes(name.toLowerCase());
    if (!own && !findVoice(await voices(call.upstream, call.signal), name))
      throw badRequest(`no voice ${JSON.stringify(name)}: see GET /v1/audio/voices`);
    const body = {
      input: json.input,
      voice: name,
      response_format: format,
      speed: json.speed,
      seed: json.seed,
    };
    return generate(call, "/v1/audio/speech", body, SPEECH_FORMATS[format] ?? "audio/wav");
  }

  const served = serving(LABEL.name, {
    "/v1/voice/generations": voice,
    "/v1/audio/speech": speech,
    async "/v1/audio/voices"(call) {
      const list = await voices(call.upstream, call.signal);
      const shaped = toVoices(
        list.map((v) => ({ id: v.filename, name: v.display_name || v.filename })),
      );
      return jsonReply(200, { voices: shaped });
    },
  });

  return {
    name: "dia",
    displayName: "Dia-TTS-Server",
    defaultPorts: [8003],
    async probe(upstream, signal) {
      if (busy.busy(upstream.url))
        return ready("Dia-TTS-Server is generating for us (it answers nothing until done)");
      const info = await getJson(upstream, "/api/model-info", signal);
      const body = obj(info.json);
      if (info.status !== 200 || typeof body.loaded !== "boolean" || !("supports_cloning" in body))
        return no(
          `GET /api/model-info answers ${info.status} without Dia's loaded/supports_cloning`,
        );
      if (!body.loaded)
        return loading("Dia-TTS-Server is loading its model (GET /api/model-info: loaded false)");
      return ready(
        `GET /api/model-info: Dia-TTS-Server, ${str(body.display_name) ?? str(body.selector) ?? "model loaded"}`,
      );
    },
    async describe(upstream, signal) {
      const cached = described.get(upstream.url);
      if (cached && busy.busy(upstream.url)) return cached;
      const body = obj((await getJson(upstream, "/api/model-info", signal)).json);
      const id = str(body.selector) ?? "dia";
      const info: ServiceInfo = {
        engine: "other",
        label: `Dia-TTS-Server ${str(body.display_name) ?? id}`,
        maxConcurrent: 1,
        models: [
          {
            id,
            servedId: id,
            type: "tts",
            inputModalities: ["text", "audio"],
            outputModalities: ["audio"],
            features: body.supports_cloning === false ? [] : ["voice-cloning"],
            contextLength: null,
          },
        ],
      };
      described.set(upstream.url, info);
      return info;
    },
    ...served,
  };
}
