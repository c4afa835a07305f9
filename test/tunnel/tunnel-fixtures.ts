/** What the tunnel tests share: a manifest of chat models, and waiting on a condition. */
import type { Manifest } from "../../src/protocol/index.ts";

/** A manifest with one llama.cpp service serving `models`. */
export function manifest(...models: string[]): Manifest {
  return {
    schema_version: 1,
    agent: { name: "rig" },
    hosts: [
      {
        id: "h",
        gpus: [],
        services: [
          {
            name: "svc",
            engine: "llamacpp",
            type: "llm",
            features: ["streaming"],
            max_concurrent: 64,
            models: models.map((id) => ({
              id,
              input_modalities: ["text"],
              output_modalities: ["text"],
              features: [],
              context_length: 1024,
            })),
          },
        ],
      },
    ],
  };
}

/** Resolves once `check` holds, polling every 10 ms; the test's own timeout bounds it. */
export async function waitFor(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 10));
}
