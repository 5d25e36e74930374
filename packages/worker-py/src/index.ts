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
export { workerPath, workerProgram, workerSource } from "./worker-source.js";
