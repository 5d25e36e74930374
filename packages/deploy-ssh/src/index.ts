export type { SftpLike, SftpStatsLike, SshChannelLike, SshClientLike } from "./client-like.js";
export type { ConnectOptions } from "./connect.js";
export { connect } from "./connect.js";
export type { HostKeyFacts } from "./errors.js";
export { HostKeyChangedError, HostKeyError, HostKeyUnknownError } from "./errors.js";
