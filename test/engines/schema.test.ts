import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { expandEngine, expandEngines } from "../../src/engines/presets.ts";
import { checkEngines, fillPlaceholders } from "../../src/engines/schema.ts";

const tiny = join(homedir(), ".cache/club-provider/llama-v0.4.0/tiny-qwen2-chat.gguf");

describe("the engines setting", () => {
  it("accepts a preset in one line and a command with its models", () => {
    expect(checkEngines([{ name: "qwen", preset: "llama-server", model: "/models" }])).toEqual([]);
    expect(
      checkEngines([
        {
          name: "big",
          command: ["/opt/vllm", "serve", "m", "--port", "{port}"],
          adapter: "vllm",
          models: [{ id: "m", type: "llm", contextLength: 8192, features: ["streaming"] }],
          gpus: [0, 1],
          vramMiB: 20000,
          idleSeconds: 60,
          env: { HF_HOME: "/data/hf" },
        },
      ]),
    ).toEqual([]);
  });

  it("names every problem with its entry and field, all at once", () => {
    const problems = checkEngines([
      { name: "a b", preset: "ollama" },
      {
        name: "x",
        command: "serve --port 80",
        models: [{ id: "" }, { id: "m", type: "chat", features: ["telepathy"] }],
      },
      {
        name: "x",
        preset: "vllm",
        command: ["a"],
        gpus: [-1],
        vramMiB: "lots",
        idleSeconds: -1,
        env: { "A-B": "1" },
        health: "health",
        surprise: 1,
      },
      "not an object",
    ]);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^engines\[0\]\.name: expected 1-64 letters/),
        expect.stringMatching(/^engines\[0\]\.preset: expected one of llama-server, vllm/),
        expect.stringMatching(/^engines\[1\] \(x\)\.command: has no \{port\} placeholder/),
        expect.stringMatching(/^engines\[1\] \(x\)\.adapter: a command needs the adapter/),
        expect.stringMatching(/^engines\[1\] \(x\)\.models\[0\]\.id: expected a model id/),
        expect.stringMatching(/^engines\[1\] \(x\)\.models\[1\]\.type: expected one of llm/),
        expect.stringMatching(/^engines\[1\] \(x\)\.models\[1\]\.features: .*telepathy/),
        expect.stringMatching(/^engines\[2\]\.name: "x" is used twice/),
        expect.stringMatching(/give a "command" or a "preset", not both/),
        expect.stringMatching(/\.gpus: expected a list of GPU indices/),
        expect.stringMatching(/\.vramMiB: expected an integer from 0/),
        expect.stringMatching(/\.idleSeconds: expected a number from 0/),
        expect.stringMatching(/\.env: .* not a variable name/),
        expect.stringMatching(/\.health: expected a path starting with "\/"/),
        expect.stringMatching(/unknown field "surprise"/),
        'engines[3]: expected an object, got "not an object"',
      ]),
    );
    expect(checkEngines({})).toEqual(["engines: expected a list, got {}"]);
    expect(checkEngines([{ name: "qwen", preset: "llama-server", model: "/m" }], ["qwen"])).toEqual(
      ['engines[0].name: "qwen" is used twice'],
    );
  });

  it("fills {port} and {gpu}", () => {
    expect(fillPlaceholders("--port={port} --gpus {gpu}", 8081, [0, 2])).toBe(
      "--port=8081 --gpus 0,2",
    );
  });
});

describe("presets", () => {
  it.skipIf(!existsSync(tiny))(
    "llama-server on a directory: one engine per GGUF file, context and tools read from the header",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "models-"));
      copyFileSync(tiny, join(dir, "qwen-a.gguf"));
      copyFileSync(tiny, join(dir, "qwen b-00001-of-00002.gguf"));
      writeFileSync(join(dir, "qwen b-00002-of-00002.gguf"), "second part");
      writeFileSync(join(dir, "mmproj-qwen.gguf"), "projector");
      writeFileSync(join(dir, "notes.txt"), "");
      const specs = await expandEngine({
        name: "local",
        preset: "llama-server",
        model: dir,
        gpus: [1],
        args: ["-c", "512"],
      });
      expect(specs.map((s) => s.name)).toEqual(["local-qwen_b", "local-qwen-a"]);
      const [b, a] = specs;
      expect(a?.adapter).toBe("llamacpp");
      expect(a?.models).toEqual([
        {
          id: "qwen-a",
          servedId: "qwen-a",
          type: "llm",
          contextLength: expect.any(Number),
          features: ["streaming", "tool-use"],
        },
      ]);
      expect(a?.command).toEqual([
        "llama-server",
        "-m",
        join(dir, "qwen-a.gguf"),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--alias",
        "qwen-a",
        "-c",
        "512",
      ]);
      expect(a?.env).toEqual({ CUDA_VISIBLE_DEVICES: "{gpu}" });
      expect(b?.models[0]?.id).toBe("qwen b");
    },
  );

  it("refuses a missing or empty model directory and a file that is not GGUF, naming the engine", async () => {
    const dir = mkdtempSync(join(tmpdir(), "models-"));
    await expect(expandEngine({ name: "e", preset: "llama-server", model: dir })).rejects.toThrow(
      /engine e: no \.gguf file in/,
    );
    await expect(
      expandEngine({ name: "e", preset: "llama-server", model: join(dir, "nope") }),
    ).rejects.toThrow(/engine e: cannot read/);
    writeFileSync(join(dir, "fake.gguf"), "not gguf at all");
    await expect(
      expandEngine({ name: "e", preset: "llama-server", model: join(dir, "fake.gguf") }),
    ).rejects.toThrow(/engine e: .*bad magic/);
  });

  it("fills the other presets' command, adapter and type", async () => {
    const [vllm] = await expandEngine({ name: "v", preset: "vllm", model: "Qwen/Qwen3-8B" });
    expect(vllm?.command.slice(0, 3)).toEqual(["vllm", "serve", "Qwen/Qwen3-8B"]);
    expect(vllm?.models[0]).toMatchObject({ id: "Qwen/Qwen3-8B", type: "llm" });
    const [w] = await expandEngine({
      name: "w",
      preset: "whisper-server",
      model: "/m/ggml-base.en.bin",
      binary: "/opt/whisper-server",
    });
    expect(w).toMatchObject({
      adapter: "whispercpp",
      command: expect.arrayContaining(["/opt/whisper-server", "-m"]),
    });
    expect(w?.models[0]).toMatchObject({ id: "ggml-base.en", type: "stt" });
    const [k] = await expandEngine({ name: "k", preset: "kokoro", model: "/opt/Kokoro-FastAPI" });
    expect(k).toMatchObject({ adapter: "kokoro", cwd: "/opt/Kokoro-FastAPI" });
    expect(k?.models[0]).toMatchObject({ id: "kokoro", type: "tts" });
    const [c] = await expandEngine({
      name: "c",
      preset: "comfyui",
      cwd: "/opt/ComfyUI",
      models: [{ id: "sdxl" }],
    });
    expect(c).toMatchObject({
      adapter: "comfyui",
      command: ["python", "main.py", "--listen", "127.0.0.1", "--port", "{port}"],
    });
    expect(c?.models[0]).toMatchObject({ id: "sdxl", type: "image" });
    await expect(
      expandEngines(
        [{ name: "a", command: "x --port {port}", adapter: "openai", models: [{ id: "m" }] }],
        ["a"],
      ),
    ).rejects.toThrow(/engine a: the name is used twice/);
  });
});
