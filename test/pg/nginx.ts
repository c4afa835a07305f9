/**
 * nginx from Debian's package as "one real proxy hop", the one module the tests and the bench
 * start it with: round-robin over `upstreams`, WebSocket and other upgrades passed through,
 * keep-alive to the upstreams, no buffering of bodies (an SSE stream streams, a bulk body never
 * touches disk), no access log, one worker. Runs in the foreground in a throwaway prefix (or
 * `dir`); `stop()` ends it (fast shutdown, which also ends its worker).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../fakes/util.ts";

/** nginx's path, or undefined when it is not installed. */
export const NGINX =
  ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => existsSync(p)) ??
  (spawnSync("nginx", ["-v"], { stdio: "ignore" }).error === undefined ? "nginx" : undefined);

export interface NginxOptions {
  /** Where its config, pid, logs and temporary files go (default: a new temporary directory). */
  dir?: string;
  /** The port it listens on (default: a free one). */
  port?: number;
  /** Idle keep-alive connections kept to the upstreams (default 16; the bench keeps 256). */
  keepalive?: number;
}

export interface Nginx {
  url: string;
  port: number;
  child: ChildProcess;
  pid: number;
  stop(): Promise<void>;
}

function config(dir: string, port: number, upstreams: string[], keepalive: number): string {
  return `
${process.getuid?.() === 0 ? "user root;" : ""}
worker_processes 1;
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
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream club {
${upstreams.map((u) => `    server ${u} max_fails=1 fail_timeout=2s;`).join("\n")}
    keepalive ${keepalive};
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    location / {
      proxy_pass http://club;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      proxy_next_upstream error timeout;
    }
  }
}
`;
}

/** Whether something accepts a connection on the loopback `port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Starts nginx in front of `upstreams` (`host:port` each) and resolves once it accepts. */
export async function startNginx(upstreams: string[], options: NginxOptions = {}): Promise<Nginx> {
  if (!NGINX) throw new Error("nginx is not installed (apt-get install -y nginx)");
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "club-nginx-"));
  mkdirSync(dir, { recursive: true });
  const port = options.port ?? (await freePort());
  const file = join(dir, "nginx.conf");
  writeFileSync(file, config(dir, port, upstreams, options.keepalive ?? 16));
  const child = spawn(NGINX, ["-p", dir, "-c", file, "-g", "daemon off;"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  if (child.pid === undefined) throw new Error("nginx did not start");
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // Ready when it accepts a connection (or failed when it exited first).
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    if (await accepts(port)) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    pid: child.pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await exited;
    },
  };
}
