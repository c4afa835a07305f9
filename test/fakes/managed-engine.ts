/**
 * A fake llama-server run as its own program, the way the daemon starts a managed engine:
 * `node --import tsx test/fakes/managed-engine.ts --port N [options]`. It is the recorded
 * fake (FakeLlamaServer) behind real HTTP, with the start-up behaviours the supervisor must
 * handle:
 *   --alias ID         the model id it serves
 *   --load-ms N        answers 503 "Loading model" for N ms before it is healthy
 *   --fail-start       writes an error and exits 1 before it listens
 *   --crash-after N    serves N chat requests; the next one kills the process mid-request
 *   --ignore-term      ignores SIGTERM (so only SIGKILL of the group stops it)
 *   --starts-file F    appends one line per start to F (tests count real processes)
 *   --child            also starts a `sleep` in its process group (a worker the group kill reaps)
 *   --token-delay-ms N pause between streamed tokens
 *   --linger-ms N      with --crash-after: the crash closes every socket at once, and the
 *                      process ends only N ms later (the moment a crash refuses connections
 *                      before its exit is seen, made long)
 *   --hold-file F      while the file F exists, generations wait before their next token
 */
import { spawn } from "node:child_process";
import { appendFileSync, existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { FakeLlamaServer } from "./llama-server.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    alias: { type: "string", default: "fake" },
    "load-ms": { type: "string", default: "0" },
    "fail-start": { type: "boolean", default: false },
    "crash-after": { type: "string" },
    "ignore-term": { type: "boolean", default: false },
    "starts-file": { type: "string" },
    child: { type: "boolean", default: false },
    "token-delay-ms": { type: "string", default: "0" },
    "hold-file": { type: "string" },
    "linger-ms": { type: "string" },
  },
});

if (values["starts-file"]) appendFileSync(values["starts-file"], `${process.pid}\n`);
if (values["ignore-term"]) process.on("SIGTERM", () => console.log("ignoring SIGTERM"));
if (values.child) {
  const worker = spawn("sleep", ["1000"], { stdio: "ignore" });
  console.log(`worker pid ${worker.pid}`);
}
if (values["fail-start"]) {
  console.error("error: failed to load model: fake refuses to start");
  process.exit(1);
}

const fake = new FakeLlamaServer({
  port: Number(values.port),
  alias: values.alias,
  loading: Number(values["load-ms"]) > 0,
  tokenDelayMs: Number(values["token-delay-ms"]),
  tokens: ["Hello", " from", " ", values.alias, "."],
});
const crashAfter = values["crash-after"] === undefined ? Infinity : Number(values["crash-after"]);
let chats = 0;
fake.on("request", (r) => {
  if (r.method !== "POST" || !r.path.startsWith("/v1/chat/completions")) return;
  chats++;
  if (chats > crashAfter) {
    console.error(`crashing on request ${chats}`);
    const linger = values["linger-ms"];
    if (linger === undefined) process.kill(process.pid, "SIGKILL");
    else {
      fake.kill();
      setTimeout(() => process.kill(process.pid, "SIGKILL"), Number(linger));
    }
  }
});
const hold = values["hold-file"];
if (hold) {
  // Looked at before each token, so a file written before the request holds it for certain.
  const next = fake.beforeToken.bind(fake);
  fake.beforeToken = async () => {
    while (existsSync(hold)) await new Promise((r) => setTimeout(r, 20));
    await next();
  };
}
await fake.start();
console.log(`fake engine ${values.alias} listening on ${fake.url}`);
const loadMs = Number(values["load-ms"]);
if (loadMs > 0)
  setTimeout(() => {
    fake.setLoading(false);
    console.log("model loaded");
  }, loadMs);
