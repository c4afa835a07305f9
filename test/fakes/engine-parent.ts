/**
 * A stand-in daemon for the orphan test: starts one engine under its watchdog, prints the
 * pids as one JSON line, and lives until it is killed (the test kills it with SIGKILL).
 */
import { EngineProcess } from "../../src/engines/process.ts";

const command = process.argv.slice(2);
let workerPid: number | undefined;
const proc = new EngineProcess({
  command,
  env: process.env,
  onLine: (line) => {
    const m = /worker pid (\d+)/.exec(line);
    if (m) workerPid = Number(m[1]);
    if (line.includes("listening on") && workerPid)
      console.log(JSON.stringify({ group: proc.pid, worker: workerPid }));
  },
});
setInterval(() => {}, 1 << 30);
