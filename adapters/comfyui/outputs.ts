/**
 * The files a finished prompt wrote, read from its `/history` entry (`outputs.<node>.<key>[]`
 * of `{filename, subfolder, type}`: `images` for SaveImage, `gifs` for VideoHelperSuite, …),
 * and fetching one with `GET /view`. A `/view` request is built only from such an entry, and
 * only for a plain file in ComfyUI's output folder: `type` must be `output`, the name may not
 * hold a path or ComfyUI's `[input]` annotation, the subfolder may not climb out or be absolute.
 */
import { UpstreamError } from "../../src/errors.ts";
import type { EngineCall, EngineReply } from "../adapter.ts";
import { arr, obj, str } from "../kit/fields.ts";
import { forwardOpenAI } from "../kit/openai-style.ts";

/** One file a prompt wrote to ComfyUI's output folder. */
export interface OutputFile {
  node: string;
  filename: string;
  subfolder: string;
}

const LABEL = { name: "ComfyUI", hint: "is ComfyUI running?" };

/** True for a bare file name ComfyUI's `/view` resolves inside the output folder. */
export function safeName(name: string): boolean {
  return (
    name !== "" &&
    name.length <= 255 &&
    !/[/\\\0]/.test(name) &&
    !name.startsWith(".") &&
    !/\[(input|output|temp)\]\s*$/i.test(name)
  );
}

/** True for a relative subfolder that stays inside the output folder. */
export function safeSubfolder(subfolder: string): boolean {
  if (subfolder === "") return true;
  if (/^[/\\]|^[A-Za-z]:|\0/.test(subfolder) || subfolder.length > 1024) return false;
  return subfolder.split(/[/\\]/).every((part) => part !== "" && part !== "." && part !== "..");
}

/**
 * The output files of `entry` from `nodes` (every node when undefined), in node order.
 * Entries of other types (`temp` previews, `input`) are left out; an output entry that is not
 * safe is refused with an error rather than skipped, since it means ComfyUI wrote something odd.
 */
export function outputFiles(entry: Record<string, unknown>, nodes?: string[]): OutputFile[] {
  const outputs = obj(entry.outputs);
  const files: OutputFile[] = [];
  const ids = Object.keys(outputs).filter((id) => !nodes || nodes.includes(id));
  for (const id of ids.sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : 1))) {
    for (const list of Object.values(obj(outputs[id]))) {
      for (const item of arr(list).map(obj)) {
        const filename = str(item.filename);
        if (filename === undefined || item.type !== "output") continue;
        const subfolder = str(item.subfolder) ?? "";
        if (!safeName(filename) || !safeSubfolder(subfolder))
          throw new UpstreamError(
            "upstream_bad_answer",
            `ComfyUI named an output file outside its output folder: ${JSON.stringify({ filename, subfolder })}`,
          );
        files.push({ node: id, filename, subfolder });
      }
    }
  }
  return files;
}

/** The `/view` path of an output file. */
export function viewPath(file: OutputFile): string {
  const q = new URLSearchParams({
    filename: file.filename,
    subfolder: file.subfolder,
    type: "output",
  });
  return `/view?${q.toString()}`;
}

/** Fetches one output file; the body streams. Rejects unless ComfyUI answers 200. */
export async function fetchOutput(call: EngineCall, file: OutputFile): Promise<EngineReply> {
  const { json: _json, stream: _stream, ...rest } = call;
  const get = { ...rest, endpoint: { ...call.endpoint, method: "GET" as const } };
  const reply = await forwardOpenAI({ ...get, path: viewPath(file), headers: {} }, LABEL);
  if (reply.status !== 200) {
    reply.body.resume();
    throw new UpstreamError(
      "upstream_bad_answer",
      `ComfyUI answered ${reply.status} to GET ${viewPath(file)}`,
    );
  }
  return reply;
}
