export type {
  Cluster,
  DeathKind,
  JobRef,
  Remote,
  RequestCounts,
  RequestId,
  RequestSummary,
  Resources,
  Scheduler,
  Store,
  TaskEnd,
  TaskState,
} from "@sheepdog/contracts";
export { SheepdogError } from "@sheepdog/contracts";
export type { Dashboard } from "@sheepdog/dashboard";
export type {
  NdArray,
  NdArrayData,
  NdArrayDtype,
  NdArrayOptions,
  PyFileOptions,
  PyFunction,
} from "@sheepdog/serialise";
export { isNdArray, ndarray, py, pyFile, tuple } from "@sheepdog/serialise";
export type { SheepdogServer } from "@sheepdog/server";
export type { RetryOn, RunSettings, SchedulerChoice, SheepdogConfig } from "./config.js";
export type { RequestConfig, ServeOptions, ShutdownOptions } from "./default-instance.js";
export {
  cancelRequest,
  cleanup,
  dashboard,
  getErrors,
  getLogs,
  getResults,
  listRequests,
  map,
  mapAsync,
  mapSettled,
  mapStream,
  recover,
  requestStatus,
  serve,
  shutdown,
} from "./default-instance.js";
export type { TaskFailure } from "./errors.js";
export { TasksFailedError } from "./errors.js";
export type { CloseOptions } from "./internal/context.js";
export type {
  DoctorOptions,
  DoctorReport,
  DoctorStep,
  DoctorStepId,
} from "./internal/doctor.js";
export { doctor, doctorStepIds } from "./internal/doctor.js";
export type {
  ServeOptions as SheepdogServeOptions,
  Sheepdog,
  SheepdogOptions,
} from "./sheepdog.js";
export { createSheepdog } from "./sheepdog.js";
export type {
  AttemptFailures,
  AttemptOptions,
  CleanupOptions,
  DashboardOptions,
  FailureKind,
  GetResultsOptions,
  IndexedSettled,
  MapAsyncOptions,
  MapOptions,
  MapProgress,
  MapSettled,
  MapStreamOptions,
  RecoverOutcome,
  RequestStatus,
  RetryChange,
  Settled,
  StagedRequest,
  StreamOrder,
} from "./types.js";
