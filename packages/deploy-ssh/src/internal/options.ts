import { didYouMean, SheepdogError, sshSettingKeys } from "@sheepdog/contracts";
import type { ConnectOptions } from "../connect-options.js";
import { checkHostName, checkUserName, hostNameRule, userNameRule } from "./names.js";
import { source } from "./source.js";

const optionNames = [
  "host",
  ...sshSettingKeys,
  "connectTimeoutMs",
  "keepaliveIntervalMs",
  "maxConcurrentCommands",
  "commandTimeoutMs",
  "client",
  "signal",
] as const satisfies readonly (keyof ConnectOptions)[];

/** Other names people use for an option, this package's old names among them. */
const optionAliases: Record<string, (typeof optionNames)[number]> = {
  port: "sshPort",
  user: "sshUser",
  username: "sshUser",
  keyfile: "sshKeyfile",
  privateKey: "sshKeyfile",
  identityFile: "sshKeyfile",
  knownHosts: "sshKnownHosts",
  knownHostsPath: "sshKnownHosts",
  sshConfigPath: "sshConfig",
  configPath: "sshConfig",
  hostname: "host",
  timeout: "connectTimeoutMs",
};

function invalid(message: string): SheepdogError {
  return new SheepdogError("CONFIG_INVALID", source, message);
}

function checkKeys(options: object): void {
  for (const key of Object.keys(options)) {
    if ((optionNames as readonly string[]).includes(key)) continue;
    const near = didYouMean(key, optionNames, optionAliases);
    throw invalid(
      `Unknown option "${key}".${near ? ` Did you mean "${near}"?` : ` Known options: ${optionNames.join(", ")}.`}`,
    );
  }
}

function checkHost(options: ConnectOptions): void {
  const { host, sshPort, sshUser } = options;
  if (typeof host !== "string" || host === "") {
    throw invalid(
      `host must be a host name or ~/.ssh/config alias, such as "fear"; got ${JSON.stringify(host)}.`,
    );
  }
  checkHostName(host, {
    option: "host",
    fix: `Set host to ${hostNameRule}, or to such a Host alias of your SSH config.`,
  });
  if (sshPort !== undefined && !(Number.isInteger(sshPort) && sshPort >= 1 && sshPort <= 65535)) {
    throw invalid(`sshPort must be an integer from 1 to 65535; got ${JSON.stringify(sshPort)}.`);
  }
  for (const key of ["sshUser", "sshKeyfile", "sshKnownHosts", "sshConfig"] as const) {
    const value = options[key];
    if (value !== undefined && (typeof value !== "string" || value === "")) {
      throw invalid(`${key} must be a non-empty string; got ${JSON.stringify(value)}.`);
    }
  }
  if (sshUser !== undefined) {
    checkUserName(sshUser, { option: "sshUser", fix: `Set sshUser to ${userNameRule}.` });
  }
}

const isPositive = (value: unknown): boolean =>
  typeof value === "number" && Number.isFinite(value) && value > 0;

function checkTuning(options: ConnectOptions): void {
  for (const key of ["connectTimeoutMs", "commandTimeoutMs"] as const) {
    const value = options[key];
    if (value !== undefined && !isPositive(value)) {
      throw invalid(
        `${key} must be a positive number of milliseconds; got ${JSON.stringify(value)}.`,
      );
    }
  }
  const keepalive = options.keepaliveIntervalMs;
  if (keepalive !== undefined && keepalive !== 0 && !isPositive(keepalive)) {
    throw invalid(
      `keepaliveIntervalMs must be 0 (off) or a positive number of milliseconds; got ${JSON.stringify(keepalive)}.`,
    );
  }
  const max = options.maxConcurrentCommands;
  if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
    throw invalid(`maxConcurrentCommands must be a positive integer; got ${JSON.stringify(max)}.`);
  }
}

/** Checks `connect`'s options, throwing `CONFIG_INVALID` that names the option to fix. */
export function checkOptions(options: ConnectOptions): void {
  if (typeof options !== "object" || options === null) {
    throw invalid('connect needs an options object, such as connect({ host: "fear" }).');
  }
  checkKeys(options);
  checkHost(options);
  checkTuning(options);
}
