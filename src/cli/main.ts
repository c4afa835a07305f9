/** The CLI: one command per file; this file only wires them and prints user errors. */
import { Command, CommanderError } from "commander";
import { UserError } from "../errors.ts";
import { VERSION } from "../version.ts";
import { configCommand } from "./config.ts";
import { detectCommand } from "./detect.ts";
import { doctorCommand } from "./doctor.ts";
import { enginesCommand } from "./engines.ts";
import { modelsCommand } from "./models.ts";
import { printError } from "./output.ts";
import { pauseCommand, resumeCommand } from "./pause.ts";
import { relayCommand } from "./relay.ts";
import { serviceCommand } from "./service.ts";
import { startCommand } from "./start.ts";
import { statusCommand } from "./status.ts";

export function program(): Command {
  return new Command("club-provider")
    .description(
      "Serve the models on this machine to an inference club, through an outbound tunnel.",
    )
    .version(VERSION)
    .addCommand(startCommand())
    .addCommand(modelsCommand())
    .addCommand(detectCommand())
    .addCommand(statusCommand())
    .addCommand(enginesCommand())
    .addCommand(pauseCommand())
    .addCommand(resumeCommand())
    .addCommand(doctorCommand())
    .addCommand(serviceCommand())
    .addCommand(relayCommand())
    .addCommand(configCommand())
    .exitOverride();
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    if (err instanceof UserError) {
      printError(err.message);
      process.exit(1);
    }
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") {
      printError(
        `${(err as Error).message}: another program uses that port; pick another with --port`,
      );
      process.exit(1);
    }
    throw err;
  }
}
