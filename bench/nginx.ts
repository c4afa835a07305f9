/**
 * nginx as "one real proxy hop", when it is installed: the tests' nginx (`test/pg/nginx.ts`, one
 * worker like the Node proxy and each of relay and daemon, keep-alive to the upstream, no
 * buffering of bodies, no access log) with 256 idle upstream connections for the bench's load.
 */
import { NGINX, startNginx as startProxy } from "../test/pg/nginx.ts";
import type { Proc } from "./procs.ts";
import { until } from "./procs.ts";

/** nginx's path, or undefined when it is not installed. */
export function nginxBinary(): string | undefined {
  return NGINX;
}

/** Starts nginx in front of the upstream on `upstreamPort`; resolves once it answers through it. */
export async function startNginx(
  _bin: string,
  dir: string,
  port: number,
  upstreamPort: number,
): Promise<Proc & { port: number }> {
  const nginx = await startProxy([`127.0.0.1:${upstreamPort}`], { dir, port, keepalive: 256 });
  await until(`${nginx.url}/v1/models`, (s) => s === 200);
  return nginx;
}
