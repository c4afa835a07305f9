/** `club-provider config`: read and change the stored settings. */
import { Command } from "commander";
import { UserError } from "../errors.ts";
import { openStore, parseAccess, type StoredConfig } from "../config.ts";
import { describeAccess } from "../protocol/index.ts";
import { checkEngines, type StoredEngine } from "../engines/schema.ts";
import { expandEngines } from "../engines/presets.ts";
import { print, printError } from "./output.ts";

const KEYS = [
  "relayUrl",
  "apiKey",
  "name",
  "services",
  "autodetect",
  "statusPort",
  "heartbeatSeconds",
  "gpus",
  "resourceGroups",
  "queueSize",
  "queueTotal",
  "localKey",
  "sharing",
  "memberLimits",
  "allowInsecureRelay",
  "maxStreams",
  "tunnelProtocol",
  "maxBufferedMiB",
  "pageStreams",
  "paused",
  "autoPause",
  "schedule",
  "engines",
  "engineWaitSeconds",
  "vramReserveMiB",
  "vramBudgetMiB",
  "engineMaxFailures",
  "engineStopSeconds",
  "engineLogLines",
  "engineRetrySeconds",
] as const;
const SECRET = new Set(["apiKey", "localKey"]);

function checkKey(key: string): keyof StoredConfig {
  if (!(KEYS as readonly string[]).includes(key))
    throw new UserError(
      "config_key",
      `unknown setting ${JSON.stringify(key)}; settings are: ${KEYS.join(", ")}`,
    );
  return key as keyof StoredConfig;
}

function show(key: string, value: unknown): string {
  if (SECRET.has(key) && typeof value === "string")
    return `${value.slice(0, 4)}… (${value.length} characters)`;
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

/** All of stdin, without the line break a shell or `echo` leaves at the end. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

/**
 * Refuses an `engines` value the daemon would refuse, naming every entry and field at fault;
 * warns (and saves) when a preset's model cannot be read now: it may be on a disk not mounted.
 */
async function checkEnginesValue(value: unknown, services: { name?: string }[]): Promise<void> {
  const problems = checkEngines(
    value,
    services.flatMap((s) => (s.name ? [s.name] : [])),
  );
  if (problems.length)
    throw new UserError("config_value", `engines not saved:\n  ${problems.join("\n  ")}`);
  try {
    await expandEngines(value as StoredEngine[]);
  } catch (err) {
    printError(
      `warning: ${(err as Error).message}; the daemon will not run these engines until it can`,
    );
  }
}

export function configCommand(): Command {
  const cmd = new Command("config").description("show or change stored settings");
  cmd
    .command("get [key]")
    .description("print one setting, or all (secrets shortened)")
    .action((key?: string) => {
      const store = openStore();
      if (key) {
        const k = checkKey(key);
        print(store.has(k) ? show(k, store.get(k)) : "(not set)");
        return;
      }
      for (const [k, v] of Object.entries(store.store)) print(`${k} = ${show(k, v)}`);
    });
  cmd
    .command("set <key> <value>")
    .description(
      "store a setting; JSON values (numbers, true/false, lists) are parsed; " +
        "`-` reads the value from stdin (keeps a key off the command line and shell history)",
    )
    .action(async (key: string, given: string) => {
      const k = checkKey(key);
      const value = given === "-" ? await readStdin() : given;
      if (value === "") throw new UserError("config_value", `no value for ${k} on stdin`);
      let parsed: unknown = value;
      // `tunnelProtocol auto` is the one word a JSON setting takes without quotes.
      const word = k === "tunnelProtocol" && value === "auto";
      if (!word && !["relayUrl", "apiKey", "name", "localKey"].includes(k)) {
        try {
          parsed = JSON.parse(value);
        } catch {
          throw new UserError(
            "config_value",
            `${k} takes a JSON value, got ${JSON.stringify(value)}`,
          );
        }
      }
      const store = openStore();
      if (k === "engines") await checkEnginesValue(parsed, store.get("services") ?? []);
      try {
        store.set(k, parsed as never);
      } catch (err) {
        throw new UserError("config_value", `cannot set ${k}: ${(err as Error).message}`);
      }
      print(`${k} saved`);
      if (k === "engines")
        print("a running daemon applies it on SIGHUP (systemctl reload club-provider)");
    });
  cmd
    .command("unset <key>")
    .description("remove a stored setting")
    .action((key: string) => {
      openStore().delete(checkKey(key));
      print(`${key} removed`);
    });
  cmd
    .command("share <name> [members...]")
    .description(
      "share a model (by id) or a service (by name) with the whole club, or only with the members named; a running daemon applies it on SIGHUP (systemctl reload club-provider)",
    )
    .action((name: string, members: string[]) => {
      const parsed = parseAccess(members.length ? members.join(",") : "club");
      if ("problem" in parsed) throw new UserError("config_value", parsed.problem);
      const store = openStore();
      store.set("sharing", { ...store.get("sharing"), [name]: parsed.access });
      print(
        parsed.access === "private"
          ? `${name} is private`
          : `${name} shared with ${parsed.access === "club" ? "the club" : describeAccess(parsed.access)}`,
      );
    });
  cmd
    .command("unshare <name>")
    .description("make a model or service private again (only your own keys reach it)")
    .action((name: string) => {
      const store = openStore();
      const { [name]: _gone, ...rest } = store.get("sharing") ?? {};
      store.set("sharing", rest);
      print(`${name} is private`);
    });
  cmd
    .command("path")
    .description("print where the settings are stored")
    .action(() => print(openStore().path));
  return cmd;
}
