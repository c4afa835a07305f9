/** The HTTP edge shared by the relay, the gateway and the adapters (depends on errors and protocol only). */
export * from "./error.ts";
export * from "./respond.ts";
export * from "./body.ts";
export * from "./read-capped.ts";
