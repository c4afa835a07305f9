/**
 * The benchmark's processes, started and left running until Ctrl-C, for measuring or
 * profiling one path by hand (`wrk`, `perf`, `--cpu-prof` through BENCH_NODE_ARGS). Prints the
 * targets, the member key and the pids as JSON.
 * Usage: npm run build && node --import tsx bench/serve.ts
 */
import { BenchStack, KEY } from "./stack.ts";

const stack = new BenchStack();
try {
  await stack.start();
} catch (err) {
  await stack.stop();
  throw err;
}
const pids = {
  relay: stack.relay.pid,
  daemon: stack.daemon.pid,
  proxy: stack.proxy.pid,
  ...(stack.pair1 ? { relay1: stack.pair1.relay.pid, daemon1: stack.pair1.daemon.pid } : {}),
};
process.stdout.write(`${JSON.stringify({ targets: stack.targets, key: KEY, pids })}\n`);
const stop = (): void => void stack.stop().then(() => process.exit(0));
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
