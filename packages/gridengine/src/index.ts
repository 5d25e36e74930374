export type { GridEngineOptions, GridEngineScheduler } from "./grid-engine.js";
export { gridEngine } from "./grid-engine.js";
export type { JobScriptOptions } from "./job-script.js";
export { jobScript } from "./job-script.js";
