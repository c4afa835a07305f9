export * from "./types.ts";
export { detectHardware, sourceContext, DETECT_TIMEOUT_MS, GPU_SOURCES } from "./detect.ts";
export type { DetectOptions } from "./detect.ts";
export { GpuMonitor, type GpuMonitorOptions } from "./monitor.ts";
export { manifestGpus } from "./manifest-gpus.ts";
export { detectHost } from "./host.ts";
export { runTool, ToolError, type ToolResult, type ToolOptions } from "../process/run-tool.ts";
