export type { LocalSchedulerOptions } from "./local-scheduler.js";
export { localScheduler } from "./local-scheduler.js";
