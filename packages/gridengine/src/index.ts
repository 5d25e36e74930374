export type { GridEngineOptions } from "./grid-engine.js";
export { gridEngine } from "./grid-engine.js";
export type { JobScriptOptions } from "./job-script.js";
export { jobScript } from "./job-script.js";
