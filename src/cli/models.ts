/** `club-provider models`: what this rig advertises, from the running daemon or by detecting now. */
import { Command } from "commander";
import { openStore, resolveConfig } from "../config.ts";
import { fetchStatus } from "../daemon/status-server.ts";
import { discover, type RigModelCard } from "../discovery/catalog.ts";
import { describeAccess } from "../protocol/index.ts";
import { silentLogger } from "../log.ts";
import { print, table } from "./output.ts";

interface ServiceRow {
  name: string;
  engine: string;
  url: string;
  status: string;
  reason: string;
}

export function modelsCommand(): Command {
  return new Command("models")
    .description(
      "list the model cards this rig advertises (from the running daemon, or by detecting now)",
    )
    .option("--json", "print the model cards as JSON")
    .option(
      "--service <url>",
      "also probe this engine URL (repeatable)",
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option("--no-autodetect", "when detecting now, do not probe default engine ports")
    .option("--status-port <port>", "status port of a running daemon")
    .action(
      async (opts: {
        json?: boolean;
        service: string[];
        autodetect: boolean;
        statusPort?: string;
      }) => {
        const config = resolveConfig(openStore().store, process.env, {
          service: opts.service,
          ...(opts.autodetect ? {} : { autodetect: false }),
          ...(opts.statusPort ? { statusPort: opts.statusPort } : {}),
        });
        let cards: RigModelCard[];
        let services: ServiceRow[];
        let source: string;
        const running =
          config.statusPort > 0 && opts.service.length === 0
            ? ((await fetchStatus(config.statusPort)) as {
                models: RigModelCard[];
                services: ServiceRow[];
              } | null)
            : null;
        if (running) {
          cards = running.models;
          services = running.services;
          source = `from the running daemon (status port ${config.statusPort})`;
        } else {
          const catalog = await discover({
            services: config.services,
            autodetect: config.autodetect,
            log: silentLogger,
          });
          cards = catalog.cards(config.name, Math.floor(Date.now() / 1000), config.sharing);
          services = catalog.services.map((s) => ({
            name: s.name,
            engine: s.adapter.name,
            url: s.upstream.url,
            status: s.status,
            reason: s.reason,
          }));
          source = "detected now (no daemon running)";
        }
        if (opts.json) {
          print(JSON.stringify({ object: "list", data: cards }, null, 2));
          return;
        }
        if (cards.length === 0) print("No models advertised.");
        else
          print(
            table(
              ["MODEL", "TYPE", "STATE", "CONTEXT", "FEATURES", "MODALITIES", "SHARED WITH"],
              cards.map((c) => [
                c.id,
                c.service_type,
                // Managed engines' models are advertised while stopped; others serve now.
                c.state ?? "ready",
                c.context_length === null ? "-" : String(c.context_length),
                c.supported_features.join(",") || "-",
                `${c.input_modalities.join("+")} → ${c.output_modalities.join("+")}`,
                // A daemon older than sharing reports no access: it shares nothing.
                describeAccess(c.access),
              ]),
            ),
          );
        if (services.length) {
          print("");
          print(
            table(
              ["SERVICE", "ENGINE", "URL", "STATUS", "DETAIL"],
              services.map((s) => [s.name, s.engine, s.url, s.status, s.reason]),
            ),
          );
        } else {
          print(
            "\nNo model server found. Start one (e.g. `llama-server -m model.gguf`) or add it: --service http://HOST:PORT",
          );
        }
        print(`\n(${source})`);
      },
    );
}
