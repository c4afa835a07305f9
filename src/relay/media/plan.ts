/**
 * What the relay does with a synchronous call's result: image calls ask the provider for
 * `b64_json`, store each image and answer with URLs (`b64_json` when the caller asked for it);
 * byte calls (speech, music, video, 3D, voice) stream to the consumer as before and are kept as
 * they pass. SECRET results are never kept, except an image asked for as a URL: that one is a
 * single fetch (see `library.ts`).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../../log.ts";
import { describeError } from "../../errors.ts";
import type { Endpoint } from "../../protocol/index.ts";
import type { ForwardSink } from "../forward.ts";
import { baseUrl } from "../jobs/http.ts";
import { sendError } from "../../http/respond.ts";
import { CaptureSink, settled } from "./capture.ts";
import type { MediaLibrary, NewItem } from "./library.ts";
import { readSharing, shown, type Sharing } from "./sharing.ts";
import { TeeSink } from "./tee.ts";
import { type MediaKind } from "./types.ts";
import { HttpError } from "../../http/error.ts";

/** The kind of result each storing endpoint makes. */
const KINDS: Record<string, MediaKind> = {
  "/v1/images/generations": "image",
  "/v1/images/edits": "image",
  "/v1/audio/speech": "audio",
  "/v1/voice/generations": "audio",
  "/v1/music/generations": "music",
  "/v1/videos/generations": "video",
  "/v1/3d/generations": "mesh",
};

/** One call's handling of its result. */
export interface MediaPlan {
  /** The JSON body to send instead of the caller's (an image call asks for `b64_json`). */
  body?: Record<string, unknown>;
  /** Where `forward` writes the provider's answer. */
  sink: ForwardSink;
  /** After `forward`: stores what was kept and, for images, answers the consumer. */
  finish(): Promise<void>;
}

/** The URL path of a stored result. */
export const mediaPath = (token: string): string => `/v1/media/${token}`;

/** The media type an image's first bytes say it is. */
export function sniffImage(data: Buffer): string {
  if (data.subarray(0, 8).equals(Buffer.from("89504e470d0a1a0a", "hex"))) return "image/png";
  if (data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return "image/jpeg";
  if (
    data.subarray(0, 4).toString("latin1") === "RIFF" &&
    data.subarray(8, 12).toString("latin1") === "WEBP"
  )
    return "image/webp";
  if (data.subarray(0, 4).toString("latin1") === "GIF8") return "image/gif";
  return "application/octet-stream";
}

/** Plans the result handling of calls to the storing endpoints. */
export class MediaPlanner {
  constructor(
    readonly library: MediaLibrary,
    readonly log: Logger,
  ) {}

  /** Before `plan` on an instance of a club: the quota counts the member's items everywhere. */
  async prepare(endpoint: Endpoint, member: string): Promise<void> {
    if (KINDS[endpoint.path]) await this.library.countUsage(member);
  }

  /**
   * The plan for one call, or undefined when its result is not kept (another endpoint, or a
   * SECRET byte result). Throws an `HttpError` for bad sharing fields or a member over quota.
   * `json` is the body of a JSON call; a multipart one's results are UNLISTED.
   */
  plan(
    req: IncomingMessage,
    res: ServerResponse,
    endpoint: Endpoint,
    member: string,
    model: string,
    json?: Record<string, unknown>,
  ): MediaPlan | undefined {
    const sharing: Sharing = json
      ? readSharing(json)
      : { visibility: "UNLISTED", collection: null };
    const kind = KINDS[endpoint.path];
    if (!kind) return undefined;
    const meta: NewItem = { member, model, kind, contentType: "", ...sharing };
    if (kind === "image") return this.#image(req, res, meta, json);
    if (sharing.visibility === "SECRET") return undefined;
    this.library.checkQuota(member, sharing.visibility);
    return this.#bytes(req, res, meta);
  }

  #image(
    req: IncomingMessage,
    res: ServerResponse,
    meta: NewItem,
    json?: Record<string, unknown>,
  ): MediaPlan {
    const format = json?.response_format;
    if (format !== undefined && format !== "url" && format !== "b64_json")
      throw new HttpError(
        400,
        "invalid_request_error",
        `"response_format" must be "url" or "b64_json"; got ${shown(format)}`,
      );
    // A multipart edit's own response_format is passed on unread: its answer keeps b64_json
    // when the provider sent it, and gains a URL.
    const keepB64 = json ? format === "b64_json" : true;
    const store = !(keepB64 && meta.visibility === "SECRET");
    if (store) this.library.checkQuota(meta.member, meta.visibility);
    // Spaces a provider sends to keep a slow generation alive reach the consumer as they come:
    // the 200 is committed with them, and the rewritten JSON follows at the end.
    const sink: CaptureSink = new CaptureSink(this.library.limits.maxImageAnswerBytes, (spaces) => {
      if (!res.headersSent) {
        const headers = { ...sink.headers };
        delete headers["content-length"];
        delete headers["content-encoding"];
        res.writeHead(200, headers);
      }
      res.write(spaces);
    });
    res.on("close", () => {
      if (!sink.writableFinished) sink.destroy();
    });
    const base = baseUrl(req);
    return {
      ...(json ? { body: { ...json, response_format: "b64_json" } } : {}),
      sink,
      finish: async () => {
        const state = await settled(sink);
        if (res.writableEnded || res.destroyed) return;
        if (state === "closed" && res.headersSent) {
          res.destroy();
          return;
        }
        if (state === "closed") {
          if (sink.overflow)
            sendError(
              res,
              502,
              "upstream_error",
              `the provider's image answer is larger than ${this.library.limits.maxImageAnswerBytes} bytes (the relay's --media-max-image-answer)`,
            );
          else res.destroy();
          return;
        }
        const body = sink.body();
        const answer = sink.status === 200 ? parseAnswer(body) : undefined;
        if (!answer) {
          if (!res.headersSent) res.writeHead(sink.status, sink.headers);
          res.end(body);
          return;
        }
        for (const entry of answer.data) {
          if (typeof entry.b64_json !== "string" || !store) continue;
          const data = Buffer.from(entry.b64_json, "base64");
          try {
            const item = await this.library.store(data, { ...meta, contentType: sniffImage(data) });
            entry.url = base + mediaPath(item.token);
            entry.id = item.id;
            if (!keepB64) delete entry.b64_json;
          } catch (err) {
            // The image is not lost: it goes back inline, as the provider sent it.
            this.log.error({ err: describeError(err) }, "storing an image result failed");
          }
        }
        const text = JSON.stringify(answer);
        if (res.headersSent) {
          res.end(text);
          return;
        }
        const headers: Record<string, string | string[]> = { ...sink.headers };
        headers["content-type"] = "application/json";
        headers["content-length"] = String(Buffer.byteLength(text));
        delete headers["content-encoding"];
        res.writeHead(200, headers);
        res.end(text);
      },
    };
  }

  #bytes(req: IncomingMessage, res: ServerResponse, meta: NewItem): MediaPlan {
    const { id, token, part } = this.library.reserve();
    const sink = new TeeSink(res, part, {
      "x-club-file-id": id,
      "x-club-media-url": baseUrl(req) + mediaPath(token),
    });
    return {
      sink,
      finish: async () => {
        const state = await settled(sink);
        if (state !== "finished" || !sink.keeping) {
          await this.library.discard(id);
          return;
        }
        const contentType = sink.contentType.split(";")[0]?.trim().toLowerCase() ?? "";
        try {
          await this.library.commit(id, token, sink.bytes, { ...meta, contentType });
        } catch (err) {
          this.log.error({ err: describeError(err) }, "storing a result failed");
          await this.library.discard(id);
        }
      },
    };
  }
}

/** An image answer's JSON with its `data` list, or undefined when it is not one. */
function parseAnswer(body: Buffer): { data: Record<string, unknown>[] } | undefined {
  try {
    const value = JSON.parse(body.toString("utf8")) as unknown;
    if (typeof value !== "object" || value === null) return undefined;
    const data = (value as { data?: unknown }).data;
    if (!Array.isArray(data) || !data.every((d) => typeof d === "object" && d !== null))
      return undefined;
    return value as { data: Record<string, unknown>[] };
  } catch {
    return undefined;
  }
}
