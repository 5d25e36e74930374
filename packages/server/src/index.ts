export type {
  ReportEvent,
  ReportListener,
  ResultCheck,
  ServerOptions,
  SheepdogServer,
} from "./server.js";
export { DEFAULT_MAX_BODY_BYTES, startServer } from "./server.js";
export type { ServerForOptions, ServerPool } from "./server-pool.js";
export { serverPool } from "./server-pool.js";
