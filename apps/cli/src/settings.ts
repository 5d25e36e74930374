import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { SheepdogConfig } from "@sheepdog/core";
import { SheepdogError } from "@sheepdog/core";
import type { ConfigResolution } from "@sheepdog/core/cli";
import { parseResourcesText, resolveConfig } from "@sheepdog/core/cli";

/** The package name in this program's errors: `[sheepdog] [cli] ...`. */
export const source = "cli";

/** The configuration flags, their option names and how to read them. */
export const configFlags = {
  host: { option: "host", kind: "string" },
  scheduler: { option: "scheduler", kind: "string" },
  "ssh-port": { option: "sshPort", kind: "number" },
  "ssh-user": { option: "sshUser", kind: "string" },
  "ssh-keyfile": { option: "sshKeyfile", kind: "string" },
  "ssh-known-hosts": { option: "sshKnownHosts", kind: "string" },
  "ssh-config": { option: "sshConfig", kind: "string" },
  "ssh-dir": { option: "sshDir", kind: "string" },
  dbfile: { option: "dbfile", kind: "string" },
  port: { option: "port", kind: "number" },
  localhost: { option: "localhost", kind: "string" },
  connect: { option: "connect", kind: "string" },
  shell: { option: "shell", kind: "string" },
  "ge-opt": { option: "geOpts", kind: "list" },
  "slurm-opt": { option: "slurmOpts", kind: "list" },
  resources: { option: "resources", kind: "resources" },
  "pickle-protocol": { option: "pickleProtocol", kind: "number" },
  concurrency: { option: "concurrency", kind: "number" },
  "retry-window": { option: "retryWindowSeconds", kind: "number" },
  "chunk-size": { option: "chunkSize", kind: "number" },
  retries: { option: "retries", kind: "number" },
  "retry-on": { option: "retryOn", kind: "string" },
} as const satisfies Record<string, { option: keyof SheepdogConfig; kind: string }>;

export type ConfigFlag = keyof typeof configFlags;

/**
 * The configuration file looked for in the working directory. Only data is read unasked: a
 * `.ts` file runs code, so it is read only when named with `--config`.
 */
export const configFileName = "sheepdog.config.json";

export function usageError(message: string): SheepdogError {
  return new SheepdogError("CONFIG_INVALID", source, message);
}

/** The options the configuration flags gave, in SheepdogConfig's spelling. */
export function configFromFlags(values: Record<string, unknown>): Partial<SheepdogConfig> {
  const config: Record<string, unknown> = {};
  for (const [flag, { option, kind }] of Object.entries(configFlags)) {
    const value = values[flag];
    if (value === undefined) continue;
    if (kind === "resources") {
      config[option] = parseResourcesText(`--${flag}`, String(value));
    } else if (kind === "number") {
      const text = String(value);
      if (!/^\d+$/.test(text)) throw usageError(`--${flag} takes a whole number, not "${text}".`);
      config[option] = Number(text);
    } else {
      config[option] = value;
    }
  }
  return config as Partial<SheepdogConfig>;
}

/** Loads a TypeScript configuration file with tsx, which is an optional dependency. */
async function importTypeScript(path: string): Promise<{ default?: unknown }> {
  let tsx: typeof import("tsx/esm/api");
  try {
    tsx = await import("tsx/esm/api");
  } catch (error) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `Reading ${path} needs the tsx package, which is not installed. Install it beside the sheepdog command ("npm install tsx"), or write the configuration as JSON.`,
      { cause: error },
    );
  }
  return (await tsx.tsImport(pathToFileURL(path).href, import.meta.url)) as { default?: unknown };
}

/**
 * Reads `--config <file>` (JSON, or TypeScript run with tsx), else `sheepdog.config.json` in
 * `cwd` if there is one.
 */
export async function loadConfigFile(
  explicit: string | undefined,
  cwd: string,
): Promise<{ name: string; config: unknown } | undefined> {
  const found = resolve(cwd, configFileName);
  const path = explicit ? resolve(cwd, explicit) : existsSync(found) ? found : undefined;
  if (path === undefined) return undefined;
  if (!existsSync(path)) throw usageError(`The configuration file ${path} does not exist.`);
  if (path.endsWith(".ts") || path.endsWith(".mts")) {
    const module = await importTypeScript(path);
    // Outside a "type": "module" package the file loads as CommonJS, and its default export
    // arrives wrapped once more.
    let config = module.default;
    if (config && typeof config === "object" && Object.keys(config).join() === "default") {
      config = (config as { default: unknown }).default;
    }
    return { name: path, config };
  }
  try {
    return { name: path, config: JSON.parse(readFileSync(path, "utf8")) };
  } catch (error) {
    throw usageError(
      `${path} is not valid JSON (${error instanceof Error ? error.message : String(error)}). Fix it, or name another file with --config.`,
    );
  }
}

/** The configuration in force, and whether a host was given at all. */
export interface Settings extends ConfigResolution {
  /** The configuration file read, if any. */
  file?: string;
  /** False when no flag, variable or file named a host (request commands then use the request's). */
  hostGiven: boolean;
}

/**
 * The configuration in force: flags, then SHEEPDOG_* variables, then the configuration file,
 * then the defaults. With `hostFromRequest`, a missing host is allowed: commands on an existing
 * request use the host it was submitted to.
 */
export async function settings(
  values: Record<string, unknown>,
  env: Record<string, string | undefined>,
  cwd: string,
  hostFromRequest = false,
): Promise<Settings> {
  const flags = configFromFlags(values);
  const file = await loadConfigFile(values.config as string | undefined, cwd);
  const resolution = resolveConfig(flags, env, file, { requireHost: !hostFromRequest });
  if (resolution.sources.dbfile === "default") {
    resolution.config.dbfile = resolve(cwd, resolution.config.dbfile);
  }
  return {
    ...resolution,
    ...(file && { file: file.name }),
    hostGiven: resolution.config.host !== "",
  };
}

/** The settings to hand to a command on an existing request: its own host unless one was given. */
export function requestConfig(resolved: Settings): Partial<SheepdogConfig> {
  const { host, ...rest } = resolved.config;
  return host ? { host, ...rest } : rest;
}
