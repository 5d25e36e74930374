export type { RelayFacts, RelayLaunch } from "./relay-source.js";
export {
  parseProbe,
  parseRelayFacts,
  probeCommand,
  relayCommand,
  relayPath,
  relaySource,
} from "./relay-source.js";
export type { ReportLine } from "./report-lines.js";
export { parseReportLine, parseReportLines } from "./report-lines.js";
export type {
  PurgeResult,
  SpooledFile,
  SpoolRead,
  SpoolToolCommand,
  SpoolToolOptions,
  StagedDirectory,
} from "./spool-source.js";
export {
  listStaged,
  parseSpoolRead,
  parseStagedList,
  purgeStaged,
  readSpool,
  removeSpooled,
  STAGED_DIRECTORY_PATTERN,
  spoolPath,
  spoolSource,
  spoolToolCommand,
  spoolToolCommands,
} from "./spool-source.js";
export { workerPath, workerProgram, workerSource } from "./worker-source.js";
