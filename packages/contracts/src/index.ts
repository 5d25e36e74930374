export type { SheepdogErrorCode, SheepdogErrorDetail, SheepdogErrorOptions } from "./errors.js";
export { SheepdogError, sheepdogErrorCodes } from "./errors.js";
export { checkOutputMarker, outputLinesCommand, readOutputLines } from "./job-output.js";
export type { ExecOptions, ExecResult, Remote, ReverseTunnel } from "./remote.js";
export { checkFileMode, checkRemotePath } from "./remote-arguments.js";
export { ReportWatchers } from "./report-watchers.js";
export type { Resources, TaskResources } from "./resources.js";
export {
  clockTime,
  parseDuration,
  parseResources,
  parseSize,
  resourceKeys,
  resourcesForTask,
} from "./resources.js";
export type {
  Cluster,
  DeathKind,
  JobRef,
  JobSpec,
  Scheduler,
  TaskEnd,
  TaskState,
} from "./scheduler.js";
export { deathKinds } from "./scheduler.js";
export type {
  CommandSettings,
  PartSubmitter,
  SchedulerIdentity,
  ScriptSubmission,
} from "./scheduler-kit.js";
export {
  checkJobRef,
  jobNamePattern,
  outputOf,
  partTaskRuns,
  SchedulerCommands,
  splitArray,
  submitParts,
} from "./scheduler-kit.js";
export { signalName } from "./signals.js";
export type { SshSettings } from "./ssh-settings.js";
export { sshSettingKeys } from "./ssh-settings.js";
export {
  readStderrTails,
  STDERR_TAIL_BYTES,
  STDERR_TAIL_LINES,
  withStderrTail,
} from "./stderr-tail.js";
export type {
  CreatedRequest,
  NewRequest,
  PutErrorOptions,
  RequestCounts,
  RequestId,
  RequestInfo,
  RequestMeta,
  RequestSummary,
  Store,
  StoredReportsListener,
  StoreReport,
  TaskError,
  TaskFacts,
  TaskFactsEntry,
  TaskLog,
  TaskResult,
} from "./store.js";
export { logCutMark, MAX_HOST_LENGTH, MAX_LOG_BYTES, taskFactsProblem } from "./store.js";
export { didYouMean, shellQuote } from "./text.js";
export { hashToken, newToken, tokenMatches } from "./token.js";
export type {
  AnswerFacts,
  MacKey,
  WorkerAuthorization,
  WorkerRequest,
  WorkerRequestFacts,
} from "./wire/auth.js";
export {
  AUTH_SCHEME,
  BODY_HASH_HEADER,
  bodyHash,
  macKey,
  macMatches,
  newNonce,
  PROOF_HEADER,
  parseWorkerAuthorization,
  proofMatches,
  REQUEST_TIME_AHEAD_MS,
  REQUEST_TIME_BEHIND_MS,
  serverProof,
  signWorkerRequest,
  spoolMac,
  stagedMac,
  workerMac,
  workerMacMatches,
} from "./wire/auth.js";
export type { ReportFrame, TaskFrames } from "./wire/frames.js";
export {
  decodeFrames,
  decodeReports,
  decodeTaskFrames,
  encodeFrames,
  encodeReports,
  encodeTaskFrames,
  encodeTaskFramesOfRuns,
} from "./wire/frames.js";
export { isPickle, reportWrites, tailOfLog } from "./wire/report-writes.js";
export type { PackHeader, SpooledReports, SpoolHeader } from "./wire/staging.js";
export {
  decodeSpoolFile,
  encodePack,
  encodeSpoolFile,
  readPackedTask,
  SPOOL_FILE_PATTERN,
} from "./wire/staging.js";
export { storeReports } from "./wire/store-reports.js";
export type { IndexRun, TaskLayout, TaskRange } from "./wire/task-layout.js";
export {
  chunkCount,
  indexRuns,
  layoutOf,
  retryChunks,
  taskCount,
  taskIndices,
  taskRange,
} from "./wire/task-layout.js";
export type {
  FunctionSource,
  HealthReply,
  NamespaceFunction,
  ReportColumn,
  ReportColumns,
  ReportColumnsHeader,
  ReportEntry,
  ReportHeader,
  ReportRows,
  ReportsReply,
  TaskHeader,
  TaskHeldBody,
  WireErrorBody,
  WorkerLaunch,
} from "./wire.js";
export {
  NS_FUNCTION_MARKER,
  REPORTS_CONTENT_TYPE,
  STDOUT_REPORT_PREFIX,
  TASK_CONTENT_TYPE,
  WIRE_VERSION,
  WORKER_EXIT_CODES,
} from "./wire.js";
