/**
 * What command-line front ends of Sheepdog need beside the API: every configuration key,
 * resolution with the source of each value, and the progress printer of `verbose`.
 */

export { didYouMean } from "@sheepdog/contracts";
export type {
  ConfigResolution,
  ConfigSource,
  ResolvedConfig,
  RetryOn,
  SheepdogConfig,
} from "./config.js";
export {
  configKeys,
  parseResourcesText,
  resolveConfig,
  retryOnValues,
  schedulerChoices,
} from "./config.js";
export type { ProgressStream } from "./internal/progress.js";
export { progressPrinter } from "./internal/progress.js";
