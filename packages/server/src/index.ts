export type { ServerForOptions } from "./registry.js";
export { closeServers, serverFor } from "./registry.js";
export type { ReportEvent, ReportListener, ServerOptions, SheepdogServer } from "./server.js";
export { DEFAULT_MAX_BODY_BYTES, startServer } from "./server.js";
