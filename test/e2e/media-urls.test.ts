/**
 * Results as URLs and the media library, through an in-process relay with a data directory
 * and a `MediaRig` provider on a real tunnel: the official `openai` client gets image URLs that
 * fetch real PNGs; each visibility is fetched with the owner's key, another member's and none;
 * the gallery lists exactly PUBLIC; SECRET leaves nothing; a 50 MB MP4 is served in ranges;
 * deleting an item kills its URL; a member over quota is refused and keeps what was stored.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Relay } from "../../src/relay/server.ts";
import { ALICE, BOB, call, startRelay, startRig, type ErrorView } from "../relay/jobs/helpers.ts";
import type { MediaRig } from "../relay/jobs/media-rig.ts";

/** A real 1×1 PNG. */
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);
/** 50 MiB that start like an MP4 (`ftyp` box), random after. */
const MP4 = Buffer.concat([
  Buffer.from("000000186674797069736f6d0000020069736f6d", "hex"),
  randomBytes(50 * 1024 * 1024 - 20),
]);

interface ImageAnswer {
  data: { url?: string; b64_json?: string; id?: string }[];
}
interface FileView {
  id: string;
  url: string;
  visibility: string;
  collection: string | null;
  size: number;
  kind: string;
  model: string;
}

let dataDir: string;
let relay: Relay;
let rig: MediaRig;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "club-media-"));
  relay = await startRelay({ dataDir });
  rig = await startRig(relay, { image: PNG, video: MP4 });
});

afterAll(async () => {
  rig.stop();
  await relay.close();
  await rm(dataDir, { recursive: true, force: true });
});

const mediaFiles = (): string[] => readdirSync(join(dataDir, "media"));

async function image(body: Record<string, unknown>, key = ALICE): Promise<ImageAnswer> {
  const answer = await call<ImageAnswer>(
    relay,
    "POST",
    "/v1/images/generations",
    { model: "image-1", prompt: "a cave", ...body },
    {},
    key,
  );
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body;
}

const get = (url: string, key?: string, headers: Record<string, string> = {}) =>
  fetch(url, { headers: { ...headers, ...(key ? { authorization: `Bearer ${key}` } : {}) } });

describe("results as URLs", () => {
  it("images.generate answers a URL on the relay that fetches the PNG the provider drew", async () => {
    const client = new OpenAI({ baseURL: `${relay.url}/v1`, apiKey: ALICE });
    const img = await client.images.generate({
      model: "image-1",
      prompt: "a glowing crystal cave",
    });
    const url = img.data?.[0]?.url ?? "";
    expect(url.startsWith(`${relay.url}/v1/media/`)).toBe(true);
    expect(img.data?.[0]?.b64_json).toBeUndefined();
    // The token is at least 128 random bits (base64url: 6 bits a character).
    expect(url.split("/").pop()?.length ?? 0).toBeGreaterThanOrEqual(22);
    expect(rig.requests.at(-1)?.body.response_format).toBe("b64_json");
    const res = await get(url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
    expect(res.headers.get("content-length")).toBe(String(PNG.length));
    expect(res.headers.get("content-disposition")).toMatch(
      /^inline; filename="file_[0-9a-f]+\.png"$/,
    );
    expect(Buffer.from(await res.arrayBuffer()).equals(PNG)).toBe(true);
  });

  it("behind a proxy the URL takes X-Forwarded-Proto", async () => {
    const answer = await call<ImageAnswer>(
      relay,
      "POST",
      "/v1/images/generations",
      { model: "image-1", prompt: "x" },
      { "x-forwarded-proto": "https" },
    );
    expect(answer.body.data[0]?.url).toMatch(
      new RegExp(`^https://127\\.0\\.0\\.1:${relay.port}/v1/media/`),
    );
  });

  it("b64_json still works when asked for, and the image is kept too", async () => {
    const client = new OpenAI({ baseURL: `${relay.url}/v1`, apiKey: ALICE });
    const img = await client.images.generate({
      model: "image-1",
      prompt: "x",
      response_format: "b64_json",
    });
    expect(Buffer.from(img.data?.[0]?.b64_json ?? "", "base64").equals(PNG)).toBe(true);
    const res = await get(img.data?.[0]?.url ?? "");
    expect(res.status).toBe(200);
  });

  it("a bad response_format or visibility is refused with 400 naming the field", async () => {
    const bad = await call(relay, "POST", "/v1/images/generations", {
      model: "image-1",
      prompt: "x",
      response_format: "gif",
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('"response_format"');
    const vis = await call(relay, "POST", "/v1/chat/completions", {
      model: "image-1",
      messages: [],
      visibility: "FRIENDS",
    });
    expect(vis.status).toBe(400);
    expect(vis.body.error.type).toBe("invalid_request_error");
    expect(vis.body.error.message).toContain('"visibility"');
    const col = await call(relay, "POST", "/v1/images/generations", {
      model: "image-1",
      prompt: "x",
      collection: "../etc",
    });
    expect(col.status).toBe(400);
    expect(col.body.error.message).toContain('"collection"');
  });
});

describe("visibility", () => {
  it("PUBLIC and UNLISTED open with any key or none; PRIVATE only with the owner's", async () => {
    const expected: Record<string, [number, number, number]> = {
      PUBLIC: [200, 200, 200],
      UNLISTED: [200, 200, 200],
      PRIVATE: [200, 404, 404],
    };
    for (const [visibility, [owner, other, none]] of Object.entries(expected)) {
      const url = (await image({ visibility })).data[0]?.url ?? "";
      const seen = [
        (await get(url, ALICE)).status,
        (await get(url, BOB)).status,
        (await get(url)).status,
      ];
      expect(seen, visibility).toEqual([owner, other, none]);
    }
  });

  it("the gallery lists exactly the PUBLIC results, newest first, without a key", async () => {
    const pub = [
      (await image({ visibility: "PUBLIC" })).data[0]?.id,
      (await image({ visibility: "PUBLIC" })).data[0]?.id,
    ];
    await image({ visibility: "PRIVATE" });
    await image({ visibility: "UNLISTED" });
    const own = await call<{ data: FileView[] }>(relay, "GET", "/v1/files?limit=100");
    const publicIds = own.body.data.filter((f) => f.visibility === "PUBLIC").map((f) => f.id);
    const res = await fetch(`${relay.url}/v1/gallery?limit=100`);
    expect(res.status).toBe(200);
    const gallery = (await res.json()) as { data: { id: string; url: string }[] };
    expect(gallery.data.map((g) => g.id)).toEqual(publicIds);
    expect(gallery.data.slice(0, 2).map((g) => g.id)).toEqual([pub[1], pub[0]]);
    const first = await fetch(`${relay.url}/v1/gallery?limit=1`);
    const page = (await first.json()) as { data: { id: string }[]; has_more: boolean };
    expect(page.data.map((g) => g.id)).toEqual([pub[1]]);
    expect(page.has_more).toBe(true);
    const next = await fetch(`${relay.url}/v1/gallery?limit=1&after=${pub[1] ?? ""}`);
    expect(((await next.json()) as { data: { id: string }[] }).data.map((g) => g.id)).toEqual([
      pub[0],
    ]);
  });

  it("SECRET: one fetch of the URL, then nothing: no library entry, no file left", async () => {
    const before = mediaFiles().length;
    const listed = (await call<{ data: FileView[] }>(relay, "GET", "/v1/files?limit=100")).body.data
      .length;
    const url = (await image({ visibility: "SECRET" })).data[0]?.url ?? "";
    const once = await get(url);
    expect(once.status).toBe(200);
    expect(Buffer.from(await once.arrayBuffer()).equals(PNG)).toBe(true);
    expect((await get(url, ALICE)).status).toBe(404);
    // The bytes go once the fetch has been sent.
    await expect.poll(() => mediaFiles().length).toBe(before);
    const b64 = await image({ visibility: "SECRET", response_format: "b64_json" });
    expect(b64.data[0]?.url).toBeUndefined();
    expect(Buffer.from(b64.data[0]?.b64_json ?? "", "base64").equals(PNG)).toBe(true);
    expect(mediaFiles().length).toBe(before);
    expect(
      (await call<{ data: FileView[] }>(relay, "GET", "/v1/files?limit=100")).body.data.length,
    ).toBe(listed);
  });
});

describe("byte results", () => {
  it("a synchronous 50 MB video streams as before, is kept, and its URL serves ranges and HEAD", async () => {
    const res = await fetch(`${relay.url}/v1/videos/generations`, {
      method: "POST",
      headers: { authorization: `Bearer ${ALICE}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "video-1", prompt: "sunrise", collection: "films" }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("video/mp4");
    expect(Buffer.from(await res.arrayBuffer()).equals(MP4)).toBe(true);
    const url = res.headers.get("x-club-media-url") ?? "";
    await expect
      .poll(
        async () =>
          (await call<{ data: FileView[] }>(relay, "GET", "/v1/files?collection=films")).body.data
            .length,
      )
      .toBe(1);
    const listed = (await call<{ data: FileView[] }>(relay, "GET", "/v1/files?collection=films"))
      .body.data[0];
    expect(listed).toMatchObject({
      url,
      kind: "video",
      model: "video-1",
      size: MP4.length,
      visibility: "UNLISTED",
    });

    const head = await fetch(url, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(MP4.length));
    expect(head.headers.get("accept-ranges")).toBe("bytes");
    const part = await get(url, undefined, { range: "bytes=1000000-1999999" });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 1000000-1999999/${MP4.length}`);
    expect(part.headers.get("content-length")).toBe("1000000");
    expect(Buffer.from(await part.arrayBuffer()).equals(MP4.subarray(1000000, 2000000))).toBe(true);
    const tail = await get(url, undefined, { range: "bytes=-10" });
    expect(Buffer.from(await tail.arrayBuffer()).equals(MP4.subarray(MP4.length - 10))).toBe(true);
    const beyond = await get(url, undefined, { range: `bytes=${MP4.length}-` });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get("content-range")).toBe(`bytes */${MP4.length}`);
  });

  it("a SECRET byte result is delivered and not kept", async () => {
    const before = mediaFiles().length;
    const res = await call<string>(relay, "POST", "/v1/music/generations", {
      model: "music-1",
      prompt: "x",
      visibility: "SECRET",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-club-media-url")).toBeNull();
    expect(mediaFiles().length).toBe(before);
  });
});

describe("the member's files", () => {
  it("PATCH changes visibility and collection; DELETE removes bytes and row, the URL 404s", async () => {
    const made = (await image({ visibility: "PRIVATE" })).data[0];
    const id = made?.id ?? "";
    const url = made?.url ?? "";
    expect((await get(url)).status).toBe(404);
    const patched = await call<FileView>(relay, "PATCH", `/v1/files/${id}`, {
      visibility: "UNLISTED",
      collection: "album",
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ visibility: "UNLISTED", collection: "album" });
    expect((await get(url)).status).toBe(200);
    const bad = await call(relay, "PATCH", `/v1/files/${id}`, { visibility: "SECRET" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('"visibility"');
    expect((await call(relay, "PATCH", `/v1/files/${id}`, {}, {}, BOB)).status).toBe(404);
    expect((await call(relay, "DELETE", `/v1/files/${id}`, undefined, {}, BOB)).status).toBe(404);
    expect(mediaFiles()).toContain(id);
    const gone = await call(relay, "DELETE", `/v1/files/${id}`);
    expect(gone.status).toBe(200);
    expect(mediaFiles()).not.toContain(id);
    expect((await get(url, ALICE)).status).toBe(404);
    expect((await call(relay, "GET", `/v1/files/${id}`)).status).toBe(404);
  });

  it("the library survives a restart of the relay", async () => {
    const url = (await image({ visibility: "UNLISTED" })).data[0]?.url ?? "";
    rig.stop();
    await relay.close();
    relay = await startRelay({ dataDir, port: relay.port });
    rig = await startRig(relay, { image: PNG, video: MP4 });
    const res = await get(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(PNG)).toBe(true);
  });
});

describe("quota", () => {
  it("a member over quota is refused with media_quota_exceeded, and keeps what was stored", async () => {
    const dir = mkdtempSync(join(tmpdir(), "club-media-quota-"));
    const small = await startRelay({
      dataDir: dir,
      mediaLimits: { maxBytesPerMember: PNG.length + 1 },
    });
    const smallRig = await startRig(small, { image: PNG });
    try {
      const urls: string[] = [];
      for (let i = 0; i < 2; i++) {
        const answer = await call<ImageAnswer>(small, "POST", "/v1/images/generations", {
          model: "image-1",
          prompt: "x",
        });
        expect(answer.status).toBe(200);
        urls.push(answer.body.data[0]?.url ?? "");
      }
      const asked = smallRig.requests.length;
      const refused = await call<ErrorView & { error: { code?: string } }>(
        small,
        "POST",
        "/v1/images/generations",
        {
          model: "image-1",
          prompt: "x",
        },
      );
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe("media_quota_exceeded");
      expect(refused.body.error.message).toContain("DELETE /v1/files/");
      expect(smallRig.requests.length).toBe(asked);
      for (const url of urls) expect((await get(url)).status).toBe(200);
      // SECRET results are never stored, so they are not refused.
      const secret = await call(small, "POST", "/v1/images/generations", {
        model: "image-1",
        prompt: "x",
        visibility: "SECRET",
        response_format: "b64_json",
      });
      expect(secret.status).toBe(200);
    } finally {
      smallRig.stop();
      await small.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
