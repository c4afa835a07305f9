export * from "./catalog.ts";
export * from "./probe.ts";
