export { SheepdogError } from "@sheepdog/contracts";
export type { PyFunction } from "@sheepdog/serialise";
export { py, pyFile, tuple } from "@sheepdog/serialise";
export type {
  ConfigResolution,
  ConfigSource,
  ResolvedConfig,
  RetryOn,
  SheepdogConfig,
} from "./config.js";
export { configKeys, memGrabBytes, resolveConfig, retryOnValues } from "./config.js";
export type { ProgressStream } from "./internal/progress.js";
export { progressPrinter } from "./internal/progress.js";
export type { ShutdownOptions } from "./internal/resources.js";
export { shutdown } from "./internal/resources.js";
export type { AttemptOptions, MapAsyncOptions, MapOptions, MapProgress } from "./map.js";
export { map, mapAsync } from "./map.js";
export type { RecoverOutcome, RequestConfig, RequestStatus, ServeOptions } from "./requests.js";
export {
  cancelRequest,
  listRequests,
  recover,
  requestStatus,
  serve,
} from "./requests.js";
export type { GetErrorsOptions, GetResultsOptions } from "./results.js";
export { getErrors, getResults } from "./results.js";
