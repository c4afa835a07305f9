/**
 * Files for the ComfyUI fake and the tests that read them back, all deterministic: images that
 * start like PNGs and say what made them, node schemas as `/object_info` lists them, and a
 * video of any size made on the fly (a 200 MB MP4 is generated as it is read, never held).
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { crc32, deflateSync } from "node:zlib";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** A private ancillary chunk: what made the image, which stripping text chunks keeps. */
const ABOUT = "clUb";

/** One PNG chunk, with its CRC (over type and data, as the format says). */
export function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * A valid 1×1 PNG carrying `text` in a private chunk, with `textChunks` as `tEXt` chunks
 * (`keyword\0text`) before its pixels, where ComfyUI's SaveImage puts `prompt` and `workflow`.
 */
export function fakePng(text: string, textChunks: Record<string, string> = {}): Buffer {
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk("IHDR", ihdr),
    ...Object.entries(textChunks).map(([k, v]) =>
      pngChunk("tEXt", Buffer.from(`${k}\0${v}`, "latin1")),
    ),
    pngChunk(ABOUT, Buffer.from(text, "utf8")),
    pngChunk("IDAT", deflateSync(Buffer.from([0, 0, 0, 0]))),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

/** The chunks of a PNG, in order, each checked against its CRC (throws on a bad one). */
export function pngChunks(bytes: Buffer): { type: string; data: Buffer }[] {
  if (!bytes.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error("not a PNG");
  const chunks: { type: string; data: Buffer }[] = [];
  for (let at = 8; at < bytes.length;) {
    const length = bytes.readUInt32BE(at);
    const type = bytes.toString("latin1", at + 4, at + 8);
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (crc32(bytes.subarray(at + 4, at + 8 + length)) !== bytes.readUInt32BE(at + 8 + length))
      throw new Error(`bad CRC in ${type}`);
    chunks.push({ type, data });
    at += 12 + length;
  }
  return chunks;
}

/** The text a {@link fakePng} carries. */
export function pngText(bytes: Buffer): string {
  const about = pngChunks(bytes).find((c) => c.type === ABOUT);
  if (!about) throw new Error("no clUb chunk");
  return about.data.toString("utf8");
}

const CHUNK = 64 * 1024;
const FTYP = Buffer.from("0000001c667479706d703432000000006d7034326973366d", "hex");

/** Byte `i` of a fake video (after its `ftyp` box): a pattern no buffer reuse would keep. */
function chunkAt(offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) {
    const n = offset + i;
    out[i] = (n * 31 + (n >>> 11) + (n >>> 19)) & 0xff;
  }
  if (offset < FTYP.length) FTYP.copy(out, 0, offset, Math.min(FTYP.length, offset + length));
  return out;
}

/**
 * A fake MP4 of `size` bytes, made chunk by chunk as it is read; `onChunk` hears each chunk's
 * size as it is produced.
 */
export function videoStream(size: number, onChunk: (bytes: number) => void = () => undefined) {
  let offset = 0;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (offset >= size) {
        this.push(null);
        return;
      }
      const length = Math.min(CHUNK, size - offset);
      const chunk = chunkAt(offset, length);
      offset += length;
      onChunk(length);
      this.push(chunk);
    },
  });
}

/** The SHA-256 of {@link videoStream}`(size)`, computed chunk by chunk. */
export function videoDigest(size: number): string {
  const hash = createHash("sha256");
  for (let offset = 0; offset < size; offset += CHUNK)
    hash.update(chunkAt(offset, Math.min(CHUNK, size - offset)));
  return hash.digest("hex");
}

/** What the fake's `/object_info/{class}` knows, by class: each input's spec. */
export function nodeSchemas(
  checkpoints: string[],
  inputs: string[],
): Record<string, Record<string, unknown>> {
  // Limits as ComfyUI 0.3.64 lists them (MAX_RESOLUTION is 16384).
  const INT = (min: number, max: number) => ["INT", { default: min, min, max }];
  const FLOAT = (min: number, max: number) => ["FLOAT", { default: min, min, max }];
  // ComfyUI's seed max is 0xffffffffffffffff, which a double rounds to 2 ** 64.
  const SEED = INT(0, 2 ** 64);
  const SIZE = INT(16, 16384);
  const BATCH = INT(1, 4096);
  const STRING = ["STRING", { multiline: true }];
  return {
    CheckpointLoaderSimple: { ckpt_name: [checkpoints] },
    CLIPTextEncode: { text: STRING, clip: ["CLIP"] },
    EmptyLatentImage: { width: SIZE, height: SIZE, batch_size: BATCH },
    KSampler: {
      seed: SEED,
      steps: INT(1, 10000),
      cfg: FLOAT(0, 100),
      sampler_name: [["euler", "euler_ancestral", "dpmpp_2m"]],
      scheduler: [["normal", "karras"]],
      denoise: FLOAT(0, 1),
      model: ["MODEL"],
      positive: ["CONDITIONING"],
      negative: ["CONDITIONING"],
      latent_image: ["LATENT"],
    },
    VAEDecode: { samples: ["LATENT"], vae: ["VAE"] },
    VAEEncode: { pixels: ["IMAGE"], vae: ["VAE"] },
    SaveImage: { images: ["IMAGE", { tooltip: "The images to save." }], filename_prefix: STRING },
    LoadImage: { image: [inputs, { image_upload: true }] },
    // A file of the output folder, chosen at run time: a COMBO with no options list.
    LoadImageOutput: {
      image: [
        "COMBO",
        { image_upload: true, image_folder: "output", remote: { route: "/internal/files/output" } },
      ],
    },
    LoadImageMask: { image: [inputs, { image_upload: true }], channel: [["alpha", "red"]] },
    SetLatentNoiseMask: { samples: ["LATENT"], mask: ["MASK"] },
    EmptyImage: {
      width: INT(1, 16384),
      height: INT(1, 16384),
      batch_size: BATCH,
      color: INT(0, 16777215),
    },
    ImageInvert: { image: ["IMAGE"] },
    ImageBlur: { image: ["IMAGE", {}], blur_radius: INT(1, 31), sigma: FLOAT(0.1, 10) },
    PrimitiveStringMultiline: { value: STRING },
    // Newer node schemas write combos as ["COMBO", {options}].
    CLIPLoader: {
      clip_name: ["COMBO", { options: ["t5xxl_fp16.safetensors"] }],
      type: ["COMBO", { options: ["stable_diffusion", "ltxv"] }],
    },
    EmptyLTXVLatentVideo: {
      width: INT(64, 16384),
      height: INT(64, 16384),
      length: INT(1, 16384),
      batch_size: BATCH,
    },
    LTXVImgToVideo: {
      positive: ["CONDITIONING"],
      negative: ["CONDITIONING"],
      vae: ["VAE"],
      image: ["IMAGE"],
      width: INT(64, 16384),
      height: INT(64, 16384),
      length: INT(9, 16384),
      batch_size: BATCH,
      strength: FLOAT(0, 1),
    },
    LTXVConditioning: {
      positive: ["CONDITIONING"],
      negative: ["CONDITIONING"],
      frame_rate: FLOAT(0, 1000),
    },
    LTXVScheduler: {
      steps: INT(1, 10000),
      max_shift: FLOAT(0, 100),
      base_shift: FLOAT(0, 100),
      stretch: ["BOOLEAN"],
      terminal: FLOAT(0, 0.99),
    },
    KSamplerSelect: { sampler_name: [["euler", "dpmpp_2m"]] },
    RandomNoise: { noise_seed: SEED },
    CFGGuider: {
      model: ["MODEL"],
      positive: ["CONDITIONING"],
      negative: ["CONDITIONING"],
      cfg: FLOAT(0, 100),
    },
    SamplerCustomAdvanced: {
      noise: ["NOISE"],
      guider: ["GUIDER"],
      sampler: ["SAMPLER"],
      sigmas: ["SIGMAS"],
      latent_image: ["LATENT"],
    },
    CreateVideo: { images: ["IMAGE"], fps: FLOAT(1, 120) },
    SaveVideo: {
      video: ["VIDEO"],
      filename_prefix: STRING,
      format: [["auto", "mp4"]],
      codec: [["auto", "h264"]],
    },
  };
}

/** The text chunks ComfyUI's SaveImage writes: the graph as run, and the UI's workflow. */
function metadata(graph: Record<string, Node>): Record<string, string> {
  return { prompt: JSON.stringify(graph), workflow: JSON.stringify({ nodes: [], links: [] }) };
}

/** A file a fake prompt wrote: bytes, or a video made when it is read. */
export type StoredFile = { kind: "bytes"; bytes: Buffer } | { kind: "video"; size: number };

type Node = { class_type: string; inputs: Record<string, unknown>; _meta?: { title?: string } };

/**
 * Writes into `files` what a finished prompt's save nodes make (SaveImage: a `fakePng` per
 * batch item naming prompt, seed and inputs; SaveVideo: a `videoBytes` MP4), and returns the
 * `/history` outputs for them, with a `temp` preview beside, as PreviewImage nodes add.
 */
export function saveOutputs(
  graph: Record<string, Node>,
  files: Map<string, StoredFile>,
  next: () => number,
  videoBytes: number,
): Record<string, unknown> {
  const nodes = Object.values(graph);
  const text = (title: string): unknown => nodes.find((n) => n._meta?.title === title)?.inputs.text;
  const input = nodes.find((n) => /^LoadImage(Output)?$/.test(n.class_type))?.inputs.image;
  const mask = nodes.find((n) => n.class_type === "LoadImageMask")?.inputs.image;
  const seed = nodes.map((n) => n.inputs.seed ?? n.inputs.noise_seed).find((s) => s !== undefined);
  const latent = nodes.find((n) => n.class_type === "EmptyLatentImage");
  const batch = Number(latent?.inputs.batch_size ?? 1);
  const outputs: Record<string, unknown> = {
    "999": { images: [{ filename: "preview.png", subfolder: "", type: "temp" }] },
  };
  for (const [id, node] of Object.entries(graph)) {
    const video = node.class_type === "SaveVideo";
    const count = node.class_type === "SaveImage" ? batch : video ? 1 : 0;
    const given = node.inputs.filename_prefix;
    const prefix = typeof given === "string" ? given : "ComfyUI";
    const cut = prefix.lastIndexOf("/");
    const subfolder = cut < 0 ? "" : prefix.slice(0, cut);
    const saved: { filename: string; subfolder: string; type: string }[] = [];
    for (let i = 0; i < count; i++) {
      const filename = `${prefix.slice(cut + 1)}_${String(next()).padStart(5, "0")}_.${video ? "mp4" : "png"}`;
      const about = {
        prompt: text("Positive prompt"),
        negative: text("Negative prompt"),
        seed,
        i,
        input,
        mask,
      };
      files.set(
        subfolder ? `${subfolder}/${filename}` : filename,
        video
          ? { kind: "video", size: videoBytes }
          : { kind: "bytes", bytes: fakePng(JSON.stringify(about), metadata(graph)) },
      );
      saved.push({ filename, subfolder, type: "output" });
    }
    if (saved.length) outputs[id] = video ? { images: saved, animated: [true] } : { images: saved };
  }
  return outputs;
}
