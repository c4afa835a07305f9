/**
 * Files for the ComfyUI fake and the tests that read them back, all deterministic: images that
 * start like PNGs and say what made them, node schemas as `/object_info` lists them, and a
 * video of any size made on the fly (a 200 MB MP4 is generated as it is read, never held).
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** An image the sniffers take for a PNG, carrying `text`. */
export function fakePng(text: string): Buffer {
  return Buffer.concat([PNG_SIGNATURE, Buffer.from(`fake-png:${text}`)]);
}

/** The text a {@link fakePng} carries. */
export function pngText(bytes: Buffer): string {
  return bytes
    .subarray(PNG_SIGNATURE.length)
    .toString("utf8")
    .replace(/^fake-png:/, "");
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
  const INT = ["INT", { default: 0 }];
  const FLOAT = ["FLOAT", { default: 1 }];
  const STRING = ["STRING", { multiline: true }];
  return {
    CheckpointLoaderSimple: { ckpt_name: [checkpoints] },
    CLIPTextEncode: { text: STRING, clip: ["CLIP"] },
    EmptyLatentImage: { width: INT, height: INT, batch_size: INT },
    KSampler: {
      seed: INT,
      steps: INT,
      cfg: FLOAT,
      sampler_name: [["euler", "euler_ancestral", "dpmpp_2m"]],
      scheduler: [["normal", "karras"]],
      denoise: FLOAT,
      model: ["MODEL"],
      positive: ["CONDITIONING"],
      negative: ["CONDITIONING"],
      latent_image: ["LATENT"],
    },
    VAEDecode: { samples: ["LATENT"], vae: ["VAE"] },
    VAEEncode: { pixels: ["IMAGE"], vae: ["VAE"] },
    SaveImage: { images: ["IMAGE"], filename_prefix: STRING },
    LoadImage: { image: [inputs, { image_upload: true }] },
    LoadImageMask: { image: [inputs, { image_upload: true }], channel: [["alpha", "red"]] },
    SetLatentNoiseMask: { samples: ["LATENT"], mask: ["MASK"] },
    // Newer node schemas write combos as ["COMBO", {options}].
    CLIPLoader: {
      clip_name: ["COMBO", { options: ["t5xxl_fp16.safetensors"] }],
      type: ["COMBO", { options: ["stable_diffusion", "ltxv"] }],
    },
    EmptyLTXVLatentVideo: { width: INT, height: INT, length: INT, batch_size: INT },
    LTXVImgToVideo: {
      positive: ["CONDITIONING"],
      negative: ["CONDITIONING"],
      vae: ["VAE"],
      image: ["IMAGE"],
      width: INT,
      height: INT,
      length: INT,
      batch_size: INT,
      strength: FLOAT,
    },
    LTXVConditioning: { positive: ["CONDITIONING"], negative: ["CONDITIONING"], frame_rate: FLOAT },
    LTXVScheduler: {
      steps: INT,
      max_shift: FLOAT,
      base_shift: FLOAT,
      stretch: ["BOOLEAN"],
      terminal: FLOAT,
    },
    KSamplerSelect: { sampler_name: [["euler", "dpmpp_2m"]] },
    RandomNoise: { noise_seed: INT },
    CFGGuider: {
      model: ["MODEL"],
      positive: ["CONDITIONING"],
      negative: ["CONDITIONING"],
      cfg: FLOAT,
    },
    SamplerCustomAdvanced: {
      noise: ["NOISE"],
      guider: ["GUIDER"],
      sampler: ["SAMPLER"],
      sigmas: ["SIGMAS"],
      latent_image: ["LATENT"],
    },
    CreateVideo: { images: ["IMAGE"], fps: FLOAT },
    SaveVideo: {
      video: ["VIDEO"],
      filename_prefix: STRING,
      format: [["auto", "mp4"]],
      codec: [["auto", "h264"]],
    },
  };
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
  const input = nodes.find((n) => n.class_type === "LoadImage")?.inputs.image;
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
          : { kind: "bytes", bytes: fakePng(JSON.stringify(about)) },
      );
      saved.push({ filename, subfolder, type: "output" });
    }
    if (saved.length) outputs[id] = video ? { images: saved, animated: [true] } : { images: saved };
  }
  return outputs;
}
