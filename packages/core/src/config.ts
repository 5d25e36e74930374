import type { Resources, SshSettings } from "@sheepdog/contracts";
import { didYouMean, parseResources, SheepdogError, sshSettingKeys } from "@sheepdog/contracts";
import { source } from "./internal/source.js";

/**
 * How Sheepdog reaches the cluster and where it keeps results: the original's configuration
 * object, in TypeScript's spelling. Only `host` is required.
 *
 * Each setting is resolved as: this object, then the environment variable named beside it,
 * then the default. The SSH settings ({@link SshSettings}) are read from `SHEEPDOG_SSH_PORT`,
 * `SHEEPDOG_SSH_USER`, `SHEEPDOG_SSH_KEYFILE`, `SHEEPDOG_SSH_KNOWN_HOSTS` and
 * `SHEEPDOG_SSH_CONFIG`.
 */
export interface SheepdogConfig extends SshSettings {
  /**
   * The cluster's head node, reached over SSH, where `sbatch` or `qsub` runs. `"local"` runs
   * the tasks as local processes instead (no cluster needed). Env: `SHEEPDOG_HOST`.
   */
  host: string;
  /**
   * The head node's scheduler: `"auto"` asks it once per connection which of `sbatch` and
   * `qsub` it has. Env: `SHEEPDOG_SCHEDULER`. @default "auto"
   */
  scheduler?: SchedulerChoice;
  /** Where job scripts go on the head node, relative to the remote home. Env: `SHEEPDOG_SSH_DIR`. @default ".sheepdog" */
  sshDir?: string;
  /** The SQLite file that keeps requests and results. Env: `SHEEPDOG_DBFILE`. @default "./sheepdog.sqlite" */
  dbfile?: string;
  /** The port the server listens on for workers. Env: `SHEEPDOG_PORT`. @default a free high port */
  port?: number;
  /**
   * How the cluster's nodes reach this machine's server. `"direct"`: at `localhost` and
   * `port`, as the original did. `"relay"`: through a small relay on the head node, carried
   * back over the SSH connection (for a laptop behind NAT, a VPN or a firewall). `"auto"`:
   * the head node checks whether the direct route answers before anything is submitted, and
   * the workers get both routes, the one that works first, and fall back to the other by
   * themselves. With `host: "local"` the route is always direct. Env: `SHEEPDOG_CONNECT`.
   * @default "auto"
   */
  connect?: ConnectChoice;
  /**
   * The name workers use to reach this machine. Env: `SHEEPDOG_LOCALHOST`.
   * @default this machine's FQDN (`127.0.0.1` with `host: "local"`)
   */
  localhost?: string;
  /** The Python interpreter that runs the tasks (`-S`, the shebang). Env: `SHEEPDOG_SHELL`. @default "/usr/bin/python3" */
  shell?: string;
  /**
   * GridEngine options (the original's `ge_opts`), one option and its value per string:
   * `["-l h_rt=1:0:0", "-q all.q"]`. `-S <shell>`, `-t 1-N`, and `-wd`, `-o`, `-e` in
   * `sshDir` unless given, are always added. `-l mem_grab=2G` makes each task limit its own
   * memory (setrlimit). An error on a Slurm cluster. Env: `SHEEPDOG_GE_OPTS` (JSON). @default []
   */
  geOpts?: string[];
  /**
   * Slurm options (sbatch's), one option and its value per string: `["--time=1:00:00",
   * "--partition=short"]`. `--mem=2G` makes each task limit its own memory (setrlimit). An
   * error on a GridEngine cluster. Env: `SHEEPDOG_SLURM_OPTS` (JSON). @default []
   */
  slurmOpts?: string[];
  /**
   * What each call needs, in no scheduler's dialect, translated by the cluster's scheduler:
   * `{ memory: "4G", time: "1:00:00", cpus: 2, queue: "short" }`. Time is per call (a task
   * of `chunkSize` calls asks for that many times as much); memory is also each task's
   * setrlimit. Env: `SHEEPDOG_RESOURCES` (`memory=4G,time=1:00:00` or JSON).
   */
  resources?: Resources;
  /** The pickle protocol for arguments and results (2 to 5). Env: `SHEEPDOG_PICKLE_PROTOCOL`. @default 4 */
  pickleProtocol?: number;
  /** How many tasks run at once with `host: "local"`. Env: `SHEEPDOG_CONCURRENCY`. @default the number of CPUs */
  concurrency?: number;
  /** How long a worker keeps retrying a server it cannot reach, in seconds. Env: `SHEEPDOG_RETRY_WINDOW`. @default 600 */
  retryWindowSeconds?: number;
  /**
   * How many argument tuples one array task runs, one after another. Results and errors are
   * still per argument. Env: `SHEEPDOG_CHUNK_SIZE`.
   * A task that has run its own chunk claims chunks whose array task has not started (see
   * `map` in the README), unless the job has a run-time limit.
   * @default automatic: about two tasks per slot of the cluster (1 when its slots are unknown)
   */
  chunkSize?: number;
  /**
   * How many times `map` runs the failed arguments again, each time as a new array job of only
   * those arguments (see `retryOn`, and `retryWith` in `map`'s options to ask for more memory
   * or time). The error of an argument that fails every attempt lists each attempt's cause.
   * `mapAsync` does not retry. Env: `SHEEPDOG_RETRIES`. @default 0
   */
  retries?: number;
  /**
   * Which failures are retried: `"died"`, arguments whose task ended without reporting them
   * (killed by a signal, over its run-time or memory limit, a node or interpreter that failed,
   * a job the scheduler refused to start) and those whose Python raised `MemoryError` (under
   * a memory limit): failures that more resources or another node can fix. `"any"` also
   * retries exceptions raised by the function itself, which are usually deterministic.
   * Env: `SHEEPDOG_RETRY_ON`. @default "died"
   */
  retryOn?: RetryOn;
}

/** The values of {@link SheepdogConfig.scheduler}. */
export const schedulerChoices = ["auto", "gridengine", "slurm"] as const;

/** One of {@link schedulerChoices}. */
export type SchedulerChoice = (typeof schedulerChoices)[number];

/** The values of {@link SheepdogConfig.connect}. */
export const connectChoices = ["auto", "direct", "relay"] as const;

/** One of {@link connectChoices}. */
export type ConnectChoice = (typeof connectChoices)[number];

/** The settings that hold one scheduler's own options. */
export const schedulerOptionSettings = ["geOpts", "slurmOpts"] as const;

/** The failures `retries` applies to; see {@link SheepdogConfig.retryOn}. */
export const retryOnValues = ["died", "any"] as const;

/** One of {@link retryOnValues}. */
export type RetryOn = (typeof retryOnValues)[number];

/** Every setting resolved, with defaults applied. */
export interface ResolvedConfig extends SshSettings {
  host: string;
  scheduler: SchedulerChoice;
  sshDir: string;
  dbfile: string;
  port: number;
  connect: ConnectChoice;
  localhost?: string;
  shell: string;
  geOpts: string[];
  slurmOpts: string[];
  resources: Resources;
  pickleProtocol: 2 | 3 | 4 | 5;
  concurrency?: number;
  retryWindowSeconds: number;
  chunkSize?: number;
  retries: number;
  retryOn: RetryOn;
}

/** How a setting is read: its kind, its variable, its name in the original, its values. */
interface Setting {
  kind: Kind;
  env: string;
  original: string;
  choices?: readonly string[];
}

/** `value` when it is one of `choices`, else an error listing them. */
function checkChoice(where: string, choices: readonly string[], value: unknown): unknown {
  if (!choices.includes(value as string)) {
    const listed = choices.map((choice) => JSON.stringify(choice));
    const got = typeof value === "string" ? JSON.stringify(value.slice(0, 40)) : describe(value);
    throw invalid(
      `${where} must be ${listed.slice(0, -1).join(", ")} or ${listed.at(-1)}, not ${got}.`,
    );
  }
  return value;
}

type Kind = "string" | "port" | "count" | "whole" | "strings" | "protocol" | "choice" | "resources";

const settings = {
  host: { kind: "string", env: "SHEEPDOG_HOST", original: "host" },
  scheduler: {
    kind: "choice",
    env: "SHEEPDOG_SCHEDULER",
    original: "scheduler",
    choices: schedulerChoices,
  },
  connect: {
    kind: "choice",
    env: "SHEEPDOG_CONNECT",
    original: "connect",
    choices: connectChoices,
  },
  sshPort: { kind: "port", env: "SHEEPDOG_SSH_PORT", original: "ssh_port" },
  sshUser: { kind: "string", env: "SHEEPDOG_SSH_USER", original: "ssh_user" },
  sshKeyfile: { kind: "string", env: "SHEEPDOG_SSH_KEYFILE", original: "ssh_keyfile" },
  sshKnownHosts: { kind: "string", env: "SHEEPDOG_SSH_KNOWN_HOSTS", original: "ssh_known_hosts" },
  sshConfig: { kind: "string", env: "SHEEPDOG_SSH_CONFIG", original: "ssh_config" },
  sshDir: { kind: "string", env: "SHEEPDOG_SSH_DIR", original: "ssh_dir" },
  dbfile: { kind: "string", env: "SHEEPDOG_DBFILE", original: "dbfile" },
  port: { kind: "port", env: "SHEEPDOG_PORT", original: "port" },
  localhost: { kind: "string", env: "SHEEPDOG_LOCALHOST", original: "localhost" },
  shell: { kind: "string", env: "SHEEPDOG_SHELL", original: "shell" },
  geOpts: { kind: "strings", env: "SHEEPDOG_GE_OPTS", original: "ge_opts" },
  slurmOpts: { kind: "strings", env: "SHEEPDOG_SLURM_OPTS", original: "slurm_opts" },
  resources: { kind: "resources", env: "SHEEPDOG_RESOURCES", original: "resources" },
  pickleProtocol: {
    kind: "protocol",
    env: "SHEEPDOG_PICKLE_PROTOCOL",
    original: "pickle_protocol",
  },
  concurrency: { kind: "count", env: "SHEEPDOG_CONCURRENCY", original: "concurrency" },
  retryWindowSeconds: { kind: "count", env: "SHEEPDOG_RETRY_WINDOW", original: "retry_window" },
  chunkSize: { kind: "count", env: "SHEEPDOG_CHUNK_SIZE", original: "chunk_size" },
  retries: { kind: "whole", env: "SHEEPDOG_RETRIES", original: "retries" },
  retryOn: {
    kind: "choice",
    env: "SHEEPDOG_RETRY_ON",
    original: "retry_on",
    choices: retryOnValues,
  },
} as const satisfies Record<keyof SheepdogConfig, Setting>;

/** The names of every configuration setting. */
export const configKeys = Object.keys(settings) as (keyof SheepdogConfig)[];

/** Where each setting's value came from, for `sheepdog config`. */
export type ConfigSource = "option" | "env" | "file" | "default";

function invalid(message: string): SheepdogError {
  return new SheepdogError("CONFIG_INVALID", source, message);
}

/** The original's spelling of each setting (`ge_opts`), for a hint. */
const originalSpellings: Record<string, string> = Object.fromEntries(
  Object.entries(settings).map(([name, setting]) => [setting.original, name]),
);

function suggestion(key: string): string {
  const original = originalSpellings[key];
  if (original !== undefined && original !== key) {
    return ` Sheepdog for TypeScript spells it "${original}".`;
  }
  const near = didYouMean(key, configKeys);
  return near ? ` Did you mean "${near}"?` : "";
}

function parseEnv(name: string, kind: Kind, raw: string): unknown {
  switch (kind) {
    case "string":
    case "choice":
      return raw;
    case "resources":
      return parseResourcesText(name, raw);
    case "strings":
      try {
        return JSON.parse(raw);
      } catch {
        throw invalid(
          `${name} must be a JSON array of strings, like '["-l h_rt=1:0:0", "-q all.q"]'.`,
        );
      }
    default:
      return /^\d+$/.test(raw.trim()) ? Number(raw) : raw;
  }
}

function check(name: string, setting: Setting, value: unknown, from: string): unknown {
  const { kind, choices } = setting;
  const where =
    from === "env"
      ? name
      : from.startsWith("file ")
        ? `"${name}" in ${from.slice(5)}`
        : `"${name}"`;
  switch (kind) {
    case "string":
      if (typeof value !== "string" || value.trim() === "") {
        throw invalid(`${where} must be a non-empty string, not ${describe(value)}.`);
      }
      if (/[\0\n\r]/.test(value)) {
        throw invalid(`${where} must not contain a newline or NUL character.`);
      }
      return value;
    case "port":
      if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 65535) {
        throw invalid(`${where} must be a port number from 0 to 65535, not ${describe(value)}.`);
      }
      return value;
    case "count":
      if (!Number.isInteger(value) || (value as number) < 1) {
        throw invalid(`${where} must be a positive whole number, not ${describe(value)}.`);
      }
      return value;
    case "whole":
      if (!Number.isInteger(value) || (value as number) < 0) {
        throw invalid(`${where} must be a whole number, 0 or more, not ${describe(value)}.`);
      }
      return value;
    case "choice":
      return checkChoice(where, choices ?? [], value);
    case "resources":
      parseResources(value, where.replace(/^"(.*)"$/, "$1"));
      return { ...(value as Resources) };
    case "protocol":
      if (value !== 2 && value !== 3 && value !== 4 && value !== 5) {
        throw invalid(`${where} must be a pickle protocol from 2 to 5, not ${describe(value)}.`);
      }
      return value;
    case "strings":
      if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
        throw invalid(
          `${where} must be an array of strings, one option per string (["-l h_rt=1:0:0"]), not ${describe(value)}.`,
        );
      }
      for (const option of value as string[]) {
        if (/[\0\n\r]/.test(option)) {
          throw invalid(
            `${where} has an option with a newline or NUL character; give each option as its own string.`,
          );
        }
      }
      return [...value];
  }
}

/**
 * Checks a list of scheduler options given outside the configuration (what `retryWith`
 * returns), as `geOpts` is checked; `where` names it in the error.
 */
export function checkOptionList(where: string, value: unknown): string[] {
  return check(where, settings.geOpts, value, "option") as string[];
}

/** `memory=4G,time=1:00:00` (or a JSON object), as `SHEEPDOG_RESOURCES` and `--resources` take it. */
export function parseResourcesText(name: string, raw: string): unknown {
  const text = raw.trim();
  if (text.startsWith("{")) {
    try {
      return JSON.parse(text);
    } catch {
      throw invalid(
        `${name} is not valid JSON; write it as memory=4G,time=1:00:00 or as a JSON object.`,
      );
    }
  }
  const resources: Record<string, unknown> = {};
  for (const pair of text.split(",")) {
    const match = /^\s*(\w+)\s*=\s*(.+?)\s*$/.exec(pair);
    if (!match?.[1] || match[2] === undefined) {
      throw invalid(
        `${name} must be name=value pairs separated by commas, like memory=4G,time=1:00:00, not ${JSON.stringify(raw.slice(0, 60))}.`,
      );
    }
    resources[match[1]] =
      match[1] === "cpus" && /^\d+$/.test(match[2]) ? Number(match[2]) : match[2];
  }
  return resources;
}

function describe(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "string") return `a string of ${value.length} characters`;
  if (Array.isArray(value)) return "an array with other than strings";
  if (typeof value === "number") return String(value);
  return typeof value;
}

/** The error for a configuration without `host` where one is needed. */
export function missingHost(): SheepdogError {
  return invalid(
    'The configuration needs "host": the cluster\'s head node that you ssh into to run qsub, or "local" to run on this machine.',
  );
}

/** The resolved configuration and where each value came from. */
export interface ConfigResolution {
  config: ResolvedConfig;
  sources: Record<keyof SheepdogConfig, ConfigSource>;
}

function checkKeys(config: unknown, where: string): Record<string, unknown> {
  if (config === undefined) return {};
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw invalid(`${where} must be an object, like { "host": "fear" }.`);
  }
  for (const key of Object.keys(config)) {
    if (!(key in settings)) {
      const place = where === "The configuration" ? "" : ` in ${where}`;
      throw invalid(`Unknown configuration option "${key}"${place}.${suggestion(key)}`);
    }
  }
  return config as Record<string, unknown>;
}

/**
 * Validates a configuration and fills in defaults: the option, then `SHEEPDOG_*` from `env`,
 * then `file` (a configuration file's contents, named by `fileName` in errors), then the
 * default. An unknown key is an error that suggests the right spelling. Without `host` it
 * throws, unless `requireHost` is false (then `host` is `""`).
 */
export function resolveConfig(
  config: Partial<SheepdogConfig> | undefined,
  env: Record<string, string | undefined> = process.env,
  file?: { name: string; config: unknown },
  options: { requireHost?: boolean } = {},
): ConfigResolution {
  const given = checkKeys(config, "The configuration");
  const fromFile = checkKeys(file?.config, file?.name ?? "the configuration file");
  const values: Partial<Record<keyof SheepdogConfig, unknown>> = {};
  const sources = {} as Record<keyof SheepdogConfig, ConfigSource>;
  for (const name of configKeys) {
    const setting: Setting = settings[name];
    const { kind, env: envName } = setting;
    const option = given[name];
    const fromEnv = env[envName];
    if (option !== undefined) {
      values[name] = check(name, setting, option, "option");
      sources[name] = "option";
    } else if (fromEnv !== undefined && fromEnv !== "") {
      values[name] = check(envName, setting, parseEnv(envName, kind, fromEnv), "env");
      sources[name] = "env";
    } else if (fromFile[name] !== undefined) {
      values[name] = check(name, setting, fromFile[name], `file ${file?.name}`);
      sources[name] = "file";
    } else {
      sources[name] = "default";
    }
  }
  if (values.host === undefined && options.requireHost !== false) throw missingHost();
  const sshDir = (values.sshDir as string | undefined) ?? ".sheepdog";
  const resolved: ResolvedConfig = {
    host: (values.host as string | undefined) ?? "",
    scheduler: (values.scheduler as SchedulerChoice | undefined) ?? "auto",
    sshDir,
    dbfile: (values.dbfile as string | undefined) ?? "./sheepdog.sqlite",
    port: (values.port as number | undefined) ?? 0,
    connect: (values.connect as ConnectChoice | undefined) ?? "auto",
    shell: (values.shell as string | undefined) ?? "/usr/bin/python3",
    geOpts: (values.geOpts as string[] | undefined) ?? [],
    slurmOpts: (values.slurmOpts as string[] | undefined) ?? [],
    resources: (values.resources as Resources | undefined) ?? {},
    pickleProtocol: (values.pickleProtocol as 2 | 3 | 4 | 5 | undefined) ?? 4,
    retryWindowSeconds: (values.retryWindowSeconds as number | undefined) ?? 600,
    retries: (values.retries as number | undefined) ?? 0,
    retryOn: (values.retryOn as RetryOn | undefined) ?? "died",
  };
  for (const name of [...sshSettingKeys, "localhost", "concurrency", "chunkSize"] as const) {
    if (values[name] !== undefined)
      (resolved as unknown as Record<string, unknown>)[name] = values[name];
  }
  return { config: resolved, sources };
}

/** The settings that say how to reach a cluster and where results are kept. */
export const connectionKeys = [
  "host",
  "scheduler",
  ...sshSettingKeys,
  "concurrency",
  "dbfile",
] as const;

/** One of {@link connectionKeys}. */
export type ConnectionKey = (typeof connectionKeys)[number];

/**
 * How jobs run, whatever the store and cluster: every setting of {@link SheepdogConfig} but
 * those that choose the backends ({@link connectionKeys}).
 */
export type RunSettings = Omit<SheepdogConfig, ConnectionKey>;

/** {@link RunSettings} checked, with defaults applied. */
export type ResolvedRunSettings = Omit<ResolvedConfig, ConnectionKey>;
