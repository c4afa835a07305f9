/**
 * `club-provider start`: run the provider daemon. With `--local`, also run a relay on loopback
 * so the whole path works on this machine with no hosted club.
 */
import { randomBytes } from "node:crypto";
import { dirname } from "node:path";
import { Command } from "commander";
import { openStore, resolveConfig, type ConfigFlags } from "../config.ts";
import { Daemon } from "../daemon/daemon.ts";
import { LogRing } from "../daemon/log-ring.ts";
import { UserError } from "../errors.ts";
import { createLogger } from "../log.ts";
import { tuneHeapGrowth } from "../process/heap.ts";
import type { Relay } from "../relay/server.ts";
import { printError } from "./output.ts";
import { exitOnFault, onShutdown } from "./signals.ts";

interface StartFlags extends ConfigFlags {
  local?: boolean;
  localPort: string;
  grace: string;
  logLevel?: string;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function startCommand(): Command {
  return new Command("start")
    .description("run the provider daemon: detect engines, connect to the relay, serve requests")
    .option(
      "--relay <url>",
      "relay URL, e.g. wss://relay.example or ws://127.0.0.1:8787 (or CLUB_RELAY_URL)",
    )
    .option(
      "--api-key-file <file>",
      "read the API key from this file (mode 0600); or set CLUB_API_KEY",
    )
    .option(
      "--name <name>",
      "provider name shown to the club (or CLUB_PROVIDER_NAME; default: hostname)",
    )
    .option(
      "--service <url>",
      "an engine to serve, e.g. http://127.0.0.1:8080 (repeatable; engine detected)",
      collect,
      [],
    )
    .option(
      "--share <model>",
      "share a model or service with the club (`--share qwen3-8b`) or some members (`--share qwen3-8b=bob,carol`) for this run; repeatable. `config share` keeps it",
      collect,
      [],
    )
    .option("--no-autodetect", "do not probe default engine ports on this machine")
    .option(
      "--status-port <port>",
      "loopback port of the status server (0 turns it off; default 8790)",
    )
    .option("--page-streams <n>", "rig pages open at once, each a live stream (default 8)")
    .option("--connections <n>", "tunnel connections to hold to the relay", "1")
    .option(
      "--insecure",
      "allow a plain ws:// relay that is not on this machine (the API key crosses the network unencrypted)",
    )
    .option(
      "--tunnel-protocol <version>",
      "tunnel protocol: auto (2, falling back to 1 for an older relay), 1 or 2 (setting tunnelProtocol)",
    )
    .option("--local", "also run a relay on loopback and print an OpenAI base URL and key for it")
    .option("--local-port <port>", "port of the --local relay", "8787")
    .option("--grace <seconds>", "on SIGTERM, how long in-flight requests may finish", "30")
    .option("--log-level <level>", "trace, debug, info, warn or error")
    .action(async (flags: StartFlags) => {
      tuneHeapGrowth();
      // The rig page's log tail reads the last lines (redacted, as every destination is).
      const logTail = new LogRing();
      const log = createLogger({
        ...(flags.logLevel ? { level: flags.logLevel } : {}),
        tee: logTail,
      });
      const store = openStore();
      let relay: Relay | undefined;
      const running: { daemon?: Daemon } = {};
      // Before anything slow: a SIGTERM during start-up must stop us too.
      exitOnFault(log);
      onShutdown(log, async () => {
        await running.daemon?.stop(Number(flags.grace) * 1000);
        await relay?.close();
      });
      if (flags.local) {
        let key = store.get("localKey");
        if (!key) {
          key = `club-local-${randomBytes(18).toString("base64url")}`;
          store.set("localKey", key);
        }
        relay = await startLocalRelay(Number(flags.localPort), key, log);
        flags.relay = relay.url.replace(/^http/, "ws");
        process.env.CLUB_API_KEY = key;
        delete process.env.CLUB_API_KEY_FILE;
        delete flags.apiKeyFile;
        process.stdout.write(
          `\nLocal club running. Point any OpenAI client at it:\n\n  OPENAI_BASE_URL=${relay.url}/v1\n  OPENAI_API_KEY=${key}\n\n`,
        );
      }
      const config = resolveConfig(store.store, process.env, flags);
      const daemon = new Daemon({
        config,
        log,
        logTail,
        // Beside the settings: a service's XDG_CONFIG_HOME is in its StateDirectory.
        stateDir: dirname(store.path),
        // The owner's pause survives a restart: `club-provider resume` is the way out.
        persistPause: (reason) =>
          reason === undefined ? store.delete("paused") : store.set("paused", reason),
        // A model shared or made private from the rig page stays so, as `config share` keeps it.
        persistSharing: (name, access) =>
          store.set("sharing", { ...store.get("sharing"), [name]: access }),
      });
      running.daemon = daemon;
      daemon.on("fatal", (err: UserError) => {
        printError(err.message);
        process.exit(1);
      });
      await daemon.start();
      // SIGHUP: read the settings again and apply what can change without dropping the tunnel.
      process.on("SIGHUP", () => {
        log.info("SIGHUP: reloading settings");
        const failed = (err: unknown): void =>
          log.error("settings not reloaded: %s", (err as Error).message);
        try {
          daemon.reload(resolveConfig(openStore().store, process.env, flags)).catch(failed);
        } catch (err) {
          failed(err);
        }
      });
      const ready = daemon.catalog.services.filter((s) => s.status === "ready");
      if (ready.length === 0) {
        const tried = daemon.catalog.services
          .map((s) => `  ${s.upstream.url}: ${s.reason}`)
          .join("\n");
        printError(
          `no model server found yet${tried ? `:\n${tried}` : ""}\n` +
            "Start one (for example `llama-server -m model.gguf --port 8080`) or point at it with --service http://HOST:PORT.\n" +
            "The daemon keeps running and picks it up within 30 s.",
        );
      }
    });
}

async function startLocalRelay(
  port: number,
  key: string,
  log: ReturnType<typeof createLogger>,
): Promise<Relay> {
  // Imported here, not above: a rig that is not its own club never loads the relay's code.
  const [{ KeyRing }, { createRelay }] = await Promise.all([
    import("../relay/keys.ts"),
    import("../relay/server.ts"),
  ]);
  const keys = new KeyRing({ [key]: "local" });
  try {
    return await createRelay({ host: "127.0.0.1", port, keys, log });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    log.warn("port %d is in use; the local relay takes a free port instead", port);
    return createRelay({ host: "127.0.0.1", port: 0, keys, log });
  }
}
