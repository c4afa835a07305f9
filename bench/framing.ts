/**
 * The tunnel's framing alone, HTTP/2 against a minimal framing of our own (issue 22): what each
 * costs per small request, apart from everything else the relay and the daemon do.
 *
 * Two processes, as the tunnel's two ends: a "relay" with an HTTP/1 edge (what wrk calls) that
 * sends each request down one TCP connection, and a "daemon" that answers each from memory (a
 * small chat completion). No API, no engine, no logging: only the edge and the framing.
 * - `h2`: Node's HTTP/2 on the socket, as protocol 2 uses it (the relay a client session, the
 *   daemon a server session after `performServerHandshake`, raw streams at both ends);
 * - `lean`: frames of a 9-byte header (length u32, type u8, stream id u32) with HEADERS (JSON),
 *   DATA and END, parsed in JavaScript. No flow control and no cancellation, which a real
 *   protocol needs: its cost is a lower bound on such a protocol's.
 *
 * Usage: node --import tsx bench/framing.ts   (needs wrk; `BENCH_ROUNDS`, default 3)
 * Internal roles: `framing.ts daemon MODE`, `framing.ts relay MODE DAEMON_PORT`.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { SMALL_ANSWER, body, median } from "./common.ts";
import { cpuSeconds, startServer, type Proc } from "./procs.ts";
import { wrk, wrkAvailable } from "./wrk.ts";

type Mode = "h2" | "lean";

const ANSWER = Buffer.from(SMALL_ANSWER);
const ANSWER_HEADERS = {
  "content-type": "application/json",
  "content-length": String(ANSWER.length),
};

const HEADER = 9;
const HEADERS = 1;
const DATA = 2;
const END = 3;

/** One lean frame per part, all in one buffer: a request's or an answer's whole exchange. */
function leanExchange(id: number, head: unknown, payload: Buffer): Buffer {
  const h = Buffer.from(JSON.stringify(head));
  const out = Buffer.allocUnsafe(3 * HEADER + h.length + payload.length);
  let at = 0;
  const frame = (length: number, type: number): void => {
    out.writeUInt32BE(length, at);
    out[at + 4] = type;
    out.writeUInt32BE(id, at + 5);
    at += HEADER;
  };
  frame(h.length, HEADERS);
  at += h.copy(out, at);
  frame(payload.length, DATA);
  at += payload.copy(out, at);
  frame(0, END);
  return out;
}

/** Calls `frame` for each whole frame in what the socket brings; keeps a partial one. */
function leanReader(
  socket: net.Socket,
  frame: (type: number, id: number, payload: Buffer) => void,
): void {
  let held: Buffer | null = null;
  socket.on("data", (chunk: Buffer) => {
    const buf: Buffer = held ? Buffer.concat([held, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= HEADER) {
      const length = buf.readUInt32BE(at);
      if (buf.length - at < HEADER + length) break;
      frame(
        buf[at + 4] ?? 0,
        buf.readUInt32BE(at + 5),
        buf.subarray(at + HEADER, at + HEADER + length),
      );
      at += HEADER + length;
    }
    held = at === buf.length ? null : buf.subarray(at);
  });
}

function daemonSide(mode: Mode): void {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    if (mode === "h2") {
      const session = http2.performServerHandshake(socket);
      session.on("stream", (stream) => {
        stream.on("error", () => {});
        stream.resume();
        stream.on("end", () => {
          stream.respond({ ":status": 200, ...ANSWER_HEADERS });
          stream.end(ANSWER);
        });
      });
      return;
    }
    // Answers of one read leave in one write, as HTTP/2's session batches them.
    let answers: Buffer[] = [];
    leanReader(socket, (type, id) => {
      if (type !== END) return;
      if (answers.length === 0)
        setImmediate(() => {
          socket.write(answers.length === 1 ? (answers[0] as Buffer) : Buffer.concat(answers));
          answers = [];
        });
      answers.push(leanExchange(id, [200, ANSWER_HEADERS], ANSWER));
    });
  });
  server.listen(0, "127.0.0.1", () => {
    process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`);
  });
}

type Send = (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => void;

function relaySide(mode: Mode, daemonPort: number): void {
  const socket = net.connect(daemonPort, "127.0.0.1");
  socket.setNoDelay(true);
  let send: Send;
  if (mode === "h2") {
    const session = http2.connect("http://daemon", { createConnection: () => socket });
    send = (req, payload, res) => {
      const stream = session.request({
        ":method": req.method ?? "POST",
        ":path": req.url ?? "/",
        "content-type": "application/json",
        "content-length": String(payload.length),
      });
      stream.on("error", () => {});
      stream.end(payload);
      stream.on("response", (h) => {
        res.writeHead(Number(h[":status"]), {
          "content-type": String(h["content-type"]),
          "content-length": String(h["content-length"]),
        });
        stream.pipe(res);
      });
    };
  } else {
    let next = 1;
    const waiting = new Map<number, http.ServerResponse>();
    leanReader(socket, (type, id, payload) => {
      const res = waiting.get(id);
      if (!res) return;
      if (type === HEADERS) {
        const [status, headers] = JSON.parse(payload.toString()) as [
          number,
          Record<string, string>,
        ];
        res.writeHead(status, headers);
      } else if (type === DATA) res.write(payload);
      else {
        waiting.delete(id);
        res.end();
      }
    });
    send = (req, payload, res) => {
      const id = next++;
      waiting.set(id, res);
      const head = [req.method, req.url, { "content-type": "application/json" }];
      socket.write(leanExchange(id, head, payload));
    };
  }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => send(req, Buffer.concat(chunks), res));
  });
  socket.once("connect", () =>
    server.listen(0, "127.0.0.1", () => {
      process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`);
    }),
  );
}

interface Run {
  rps: number;
  p50: number;
  relayMs: number;
  daemonMs: number;
}

async function measure(mode: Mode, connections: number): Promise<Run> {
  const procs: Proc[] = [];
  try {
    const daemon = await startServer("framing.ts", ["daemon", mode]);
    procs.push(daemon);
    const relay = await startServer("framing.ts", ["relay", mode, String(daemon.port)]);
    procs.push(relay);
    const job = { url: `http://127.0.0.1:${relay.port}`, body: body(), connections };
    await wrk({ ...job, seconds: 1 });
    const [r0, d0] = [cpuSeconds(relay.pid), cpuSeconds(daemon.pid)];
    const result = await wrk({ ...job, seconds: 4 });
    const [r1, d1] = [cpuSeconds(relay.pid), cpuSeconds(daemon.pid)];
    if (result.errors > 0) throw new Error(`${mode}: ${result.errors} errors`);
    return {
      rps: result.rps,
      p50: result.p50,
      relayMs: ((r1 - r0) * 1000) / result.total,
      daemonMs: ((d1 - d0) * 1000) / result.total,
    };
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
}

async function main(): Promise<void> {
  if (!wrkAvailable()) throw new Error("bench/framing.ts needs wrk (apt-get install wrk)");
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const rows: string[] = [
    "| framing | concurrency | req/s | p50 ms | relay CPU ms per request | daemon CPU ms per request |",
    "| ------- | ----------- | ----- | ------ | ------------------------ | ------------------------- |",
  ];
  for (const connections of [1, 16]) {
    const runs: Record<Mode, Run[]> = { h2: [], lean: [] };
    for (let round = 0; round < rounds; round++) {
      // The two swap places every other round: the first of a pair runs on a cooler machine.
      const order: Mode[] = round % 2 === 0 ? ["h2", "lean"] : ["lean", "h2"];
      for (const mode of order) runs[mode].push(await measure(mode, connections));
    }
    for (const mode of ["h2", "lean"] as const) {
      const m = (f: (r: Run) => number): number => median(runs[mode].map(f));
      rows.push(
        `| ${mode} | ${connections} | ${m((r) => r.rps).toFixed(0)} | ${m((r) => r.p50).toFixed(2)} | ` +
          `${m((r) => r.relayMs).toFixed(4)} | ${m((r) => r.daemonMs).toFixed(4)} |`,
      );
    }
  }
  process.stdout.write(`medians of ${rounds} rounds\n${rows.join("\n")}\n`);
}

const [role, mode, port] = process.argv.slice(2);
if (role === "daemon") daemonSide(mode as Mode);
else if (role === "relay") relaySide(mode as Mode, Number(port));
else await main();
