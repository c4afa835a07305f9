export * from "./manifest.ts";
export * from "./endpoints.ts";
export * from "./headers.ts";
export * from "./messages.ts";
export * from "./envelope.ts";
