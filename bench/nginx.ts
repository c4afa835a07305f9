/**
 * nginx as "one real proxy hop", when it is installed: one worker (the Node proxy and each of
 * relay and daemon are one thread too), keep-alive to the upstream, no buffering of bodies (so
 * an SSE stream streams and a bulk body never touches disk), no access log.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Proc } from "./procs.ts";
import { until } from "./procs.ts";

/** nginx's path, or undefined when it is not installed. */
export function nginxBinary(): string | undefined {
  for (const bin of ["nginx", "/usr/sbin/nginx"])
    if (spawnSync(bin, ["-v"], { stdio: "ignore" }).error === undefined) return bin;
  return undefined;
}

function config(dir: string, port: number, upstreamPort: number): string {
  const asRoot = process.getuid?.() === 0 ? "user root;" : "";
  return `
${asRoot}
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  upstream bench { server 127.0.0.1:${upstreamPort}; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      client_max_body_size 0;
    }
  }
}
`;
}

/** Starts nginx in front of the upstream on `port`; resolves once it answers. */
export async function startNginx(
  bin: string,
  dir: string,
  port: number,
  upstreamPort: number,
): Promise<Proc & { port: number }> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "nginx.conf");
  writeFileSync(file, config(dir, port, upstreamPort));
  const child = spawn(bin, ["-p", dir, "-c", file], { stdio: ["ignore", "ignore", "pipe"] });
  const pid = child.pid;
  if (pid === undefined) throw new Error("nginx did not start");
  const proc: Proc & { port: number } = {
    child,
    pid,
    port,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM"); // nginx's fast shutdown, which also ends its worker
      await gone;
    },
  };
  await until(`http://127.0.0.1:${port}/v1/models`, (s) => s === 200);
  return proc;
}
