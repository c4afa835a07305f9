/**
 * The single-hop baseline: one plain Node proxy (`node:http` server, undici pool upstream),
 * streaming both ways. What any one proxy costs; the tunnel has two hops (relay and daemon).
 * Usage: node --import tsx bench/proxy.ts <upstream origin>   (prints `listening <port>`)
 */
import http from "node:http";
import { pipeline } from "node:stream";
import { Pool } from "undici";

const origin = process.argv[2];
if (!origin) throw new Error("usage: proxy.ts <upstream origin>");
const pool = new Pool(origin, { headersTimeout: 0, bodyTimeout: 0 });
const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "host", "upgrade"]);

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers))
    if (typeof v === "string" && !HOP.has(k)) headers[k] = v;
  const abort = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) abort.abort();
  });
  pool
    .request({
      path: req.url ?? "/",
      method: req.method === "POST" ? "POST" : "GET",
      headers,
      body: req.method === "POST" ? req : null,
      signal: abort.signal,
    })
    .then((up) => {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(up.headers))
        if (typeof v === "string" && !HOP.has(k)) out[k] = v;
      res.writeHead(up.statusCode, out);
      pipeline(up.body, res, () => undefined);
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
});
server.headersTimeout = 0;
server.requestTimeout = 0;
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`listening ${port}\n`);
});
