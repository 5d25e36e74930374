export type { JobScriptOptions } from "./job-script.js";
export { jobScript } from "./job-script.js";
export type { SlurmOptions, SlurmScheduler } from "./slurm.js";
export { slurm } from "./slurm.js";
