export type { LocalRemoteOptions } from "./local-remote.js";
export { localRemote } from "./local-remote.js";
export type { LocalScheduler, LocalSchedulerOptions } from "./local-scheduler.js";
export { localScheduler } from "./local-scheduler.js";
