/**
 * The relay of the store benchmark, in its own process: `createRelay` on a data directory with
 * `maxWritesPerCommit` from the command line and bounds wide enough for a flood of one member.
 * Prints `listening <port>` once it serves.
 * Usage: node --import tsx bench/store-relay.ts <data-dir> <max-writes-per-commit>
 */
import { silentLogger } from "../src/log.ts";
import { KeyRing } from "../src/relay/keys.ts";
import { createRelay } from "../src/relay/server.ts";
import { KEY } from "./stack.ts";

const [dataDir = "", perCommit = "1024"] = process.argv.slice(2);
const relay = await createRelay({
  port: 0,
  keys: new KeyRing({ [KEY]: "bench" }),
  log: silentLogger,
  rateLimit: 0,
  dataDir,
  jobLimits: {
    maxWritesPerCommit: Number(perCommit),
    maxActivePerMember: 1_000_000,
    maxStoredPerMember: 1_000_000,
  },
});
process.stdout.write(`listening ${relay.port}\n`);
