import { readdirSync, readFileSync } from "node:fs";
import { homedir, hostname, userInfo } from "node:os";
import { basename, dirname, isAbsolute, join } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import type { NameOrigin } from "./names.js";
import { checkHostName, checkUserName, hostNameRule, userNameRule } from "./names.js";
import { matchPattern, matchPatterns } from "./patterns.js";
import { source } from "./source.js";

/** One keyword line of an ssh_config file. */
interface ConfigLine {
  keyword: string;
  args: string[];
  /** The raw rest of the line after the keyword (ProxyCommand keeps its spacing). */
  rest: string;
  file: string;
  line: number;
}

/** The settings of ~/.ssh/config that Sheepdog uses, for one host. */
export interface HostConfig {
  hostName?: string;
  user?: string;
  port?: number;
  /** In the order found, `~` and `%` tokens not yet expanded. */
  identityFiles: string[];
  /** `IdentitiesOnly yes`: offer only agent keys that match the identity files. */
  identitiesOnly?: boolean;
  /** `none` when the config switches it off. */
  proxyCommand?: string;
  /** `none` when the config switches it off. */
  proxyJump?: string;
  hostKeyAlias?: string;
  userKnownHostsFiles?: string[];
  connectTimeoutSeconds?: number;
  serverAliveIntervalSeconds?: number;
  serverAliveCountMax?: number;
}

function configError(file: string, line: number, message: string): SheepdogError {
  return new SheepdogError("SSH_CONFIG", source, `${file} line ${line}: ${message}`);
}

/** Splits an ssh_config argument list: whitespace-separated, double quotes group. */
export function splitArgs(text: string, file: string, line: number): string[] {
  const args: string[] = [];
  let current = "";
  let inQuotes = false;
  let started = false;
  for (const c of text) {
    if (c === '"') {
      inQuotes = !inQuotes;
      started = true;
    } else if (!inQuotes && (c === " " || c === "\t")) {
      if (started) args.push(current);
      current = "";
      started = false;
    } else {
      current += c;
      started = true;
    }
  }
  if (inQuotes) throw configError(file, line, "unbalanced quotes. Close the quote.");
  if (started) args.push(current);
  return args;
}

/** Parses ssh_config text into keyword lines (keywords lowercased). */
export function parseSshConfig(text: string, file: string): ConfigLine[] {
  const lines: ConfigLine[] = [];
  const raw = text.split(/\r?\n/);
  for (let i = 0; i < raw.length; i++) {
    const trimmed = (raw[i] ?? "").trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const m = /^([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+)(.*)$/.exec(trimmed);
    if (!m) {
      throw configError(
        file,
        i + 1,
        `cannot read "${trimmed.slice(0, 40)}". Write "Keyword value".`,
      );
    }
    const keyword = (m[1] ?? "").toLowerCase();
    const rest = (m[2] ?? "").trim();
    lines.push({ keyword, args: splitArgs(rest, file, i + 1), rest, file, line: i + 1 });
  }
  return lines;
}

/** Expands a leading `~` (or `~/`) to the home directory. */
export function expandTilde(path: string, home = homedir()): string {
  if (path === "~") return home;
  if (path.startsWith("~/")) return join(home, path.slice(2));
  return path;
}

/** The values OpenSSH's `%` tokens stand for. */
export interface TokenValues {
  /** %h: the remote host name (after HostName). */
  host: string;
  /** %n: the host as given. */
  originalHost: string;
  /** %p */
  port: number;
  /** %r */
  user: string;
}

/**
 * The value of the `%` token `%<letter>`: `%h %n %p %r %u %d %l %%`. An unknown token is an
 * error that names `where` (the keyword the value belongs to).
 */
export function tokenValue(
  letter: string,
  tokens: TokenValues,
  where: string,
  home = homedir(),
): string {
  switch (letter) {
    case "%":
      return "%";
    case "h":
      return tokens.host;
    case "n":
      return tokens.originalHost;
    case "p":
      return String(tokens.port);
    case "r":
      return tokens.user;
    case "u":
      return userInfo().username;
    case "d":
      return home;
    case "l":
      return hostname().split(".")[0] ?? "";
    default:
      throw new SheepdogError(
        "SSH_CONFIG",
        source,
        `${where} uses the token "%${letter}", which Sheepdog does not support. Use %h, %n, %p, %r, %u, %d, %l or %%.`,
      );
  }
}

/**
 * Expands `%h %n %p %r %u %d %l %%` in a config value that is a path (IdentityFile,
 * UserKnownHostsFile), as they are: no shell reads it. A ProxyCommand is expanded by
 * `expandProxyCommand`, which quotes. An unknown token is an error.
 */
export function expandTokens(
  value: string,
  tokens: TokenValues,
  where: string,
  home = homedir(),
): string {
  return value.replace(/%(.)/g, (_whole, letter: string) =>
    tokenValue(letter, tokens, where, home),
  );
}

/** Expands an Include argument to files (relative to ~/.ssh; `*` and `?` in the file name). */
function includeFiles(pattern: string, home: string): string[] {
  let path = expandTilde(pattern, home);
  if (!isAbsolute(path)) path = join(home, ".ssh", path);
  const dir = dirname(path);
  const name = basename(path);
  if (!/[*?]/.test(name)) return [path];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => matchPattern(n, name))
    .sort()
    .map((n) => join(dir, n));
}

function readConfigFile(file: string): ConfigLine[] | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw SheepdogError.from(
      error,
      "SSH_CONFIG",
      source,
      `Cannot read the SSH config ${file}. Check its permissions, or set sshConfig`,
    );
  }
  return parseSshConfig(text, file);
}

/** What a `Match` line is tested against. */
interface MatchContext {
  /** The host as given, for `%h` in `HostName`. */
  host: string;
  originalHost: string;
  hostName: string;
  user: string | undefined;
  defaultUser: string;
}

function evaluateMatch(entry: ConfigLine, context: MatchContext): boolean {
  const args = entry.args;
  if (args.length === 1 && args[0]?.toLowerCase() === "all") return true;
  let result = true;
  for (let i = 0; i < args.length; i++) {
    let criterion = (args[i] ?? "").toLowerCase();
    const negate = criterion.startsWith("!");
    if (negate) criterion = criterion.slice(1);
    if (criterion === "all") continue;
    const value = args[++i];
    if (value === undefined) {
      throw configError(entry.file, entry.line, `Match ${criterion} needs an argument.`);
    }
    const patterns = value.split(",");
    let subject: string;
    switch (criterion) {
      case "host":
        subject = context.hostName;
        break;
      case "originalhost":
        subject = context.originalHost;
        break;
      case "user":
        subject = context.user ?? context.defaultUser;
        break;
      case "localuser":
        subject = userInfo().username;
        break;
      default:
        // exec, canonical, final, tagged, localnetwork: not supported; such a block never applies.
        return false;
    }
    const matched = matchPatterns(
      subject.toLowerCase(),
      patterns.map((p) => p.toLowerCase()),
    );
    if ((matched === true) === negate) result = false;
  }
  return result;
}

function positiveInteger(entry: ConfigLine, max: number): number {
  const text = entry.args[0] ?? "";
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 0 || n > max) {
    throw configError(
      entry.file,
      entry.line,
      `${entry.keyword} "${text}" is not a number from 0 to ${max}.`,
    );
  }
  return n;
}

/** A config's `Port`: 1 to 65535. */
function portOf(entry: ConfigLine): number {
  const port = positiveInteger(entry, 65535);
  if (port === 0) throw configError(entry.file, entry.line, "Port 0 is not a port.");
  return port;
}

/** A config line as the origin of a host or user name, with how to write one. */
function configOrigin(entry: ConfigLine, keyword: string, rule: string): NameOrigin {
  return {
    option: keyword,
    where: `${entry.file} line ${entry.line}`,
    fix: `Fix the ${keyword} line of that SSH config: use ${rule}.`,
  };
}

function yesOrNo(entry: ConfigLine, value: string): boolean {
  const lower = value.toLowerCase();
  if (lower !== "yes" && lower !== "no") {
    throw configError(entry.file, entry.line, `IdentitiesOnly "${value}" is not yes or no.`);
  }
  return lower === "yes";
}

/**
 * Applies one setting line of an active block to `config`, unless an earlier line set it
 * (IdentityFile accumulates). `HostName` and `User` also change what later `Match` lines
 * test.
 */
function applyEntry(entry: ConfigLine, config: HostConfig, context: MatchContext): void {
  const first = entry.args[0];
  if (first === undefined) {
    throw configError(entry.file, entry.line, `${entry.keyword} needs a value.`);
  }
  switch (entry.keyword) {
    case "hostname":
      if (config.hostName === undefined) {
        config.hostName = first.replace(/%(.)/g, (whole, c: string) =>
          c === "h" ? context.host : c === "%" ? "%" : whole,
        );
        checkHostName(config.hostName, configOrigin(entry, "HostName", hostNameRule));
        context.hostName = config.hostName.toLowerCase();
      }
      break;
    case "user":
      if (config.user === undefined) {
        checkUserName(first, configOrigin(entry, "User", userNameRule));
        config.user = first;
        context.user = first;
      }
      break;
    case "port":
      config.port ??= portOf(entry);
      break;
    case "identityfile":
      config.identityFiles.push(first);
      break;
    case "proxycommand":
      if (config.proxyCommand === undefined && config.proxyJump === undefined) {
        config.proxyCommand = entry.rest.replace(/^"(.*)"$/, "$1");
      }
      break;
    case "proxyjump":
      if (config.proxyCommand === undefined && config.proxyJump === undefined) {
        config.proxyJump = first;
      }
      break;
    case "identitiesonly": {
      const only = yesOrNo(entry, first);
      config.identitiesOnly ??= only;
      break;
    }
    case "hostkeyalias":
      config.hostKeyAlias ??= first;
      break;
    case "userknownhostsfile":
      config.userKnownHostsFiles ??= entry.args;
      break;
    case "connecttimeout":
      config.connectTimeoutSeconds ??= positiveInteger(entry, 86400);
      break;
    case "serveraliveinterval":
      config.serverAliveIntervalSeconds ??= positiveInteger(entry, 86400);
      break;
    case "serveralivecountmax":
      config.serverAliveCountMax ??= positiveInteger(entry, 1000);
      break;
    default:
      // Other keywords do not change how Sheepdog connects.
      break;
  }
}

/** Where a walk through the config files stands. */
interface Walk {
  config: HostConfig;
  context: MatchContext;
  home: string;
}

/** Applies the lines of one config file (and the files it includes) in order. */
function walkConfig(lines: ConfigLine[], depth: number, walk: Walk): void {
  let active = true;
  for (const entry of lines) {
    if (entry.keyword === "host") {
      active =
        matchPatterns(
          walk.context.originalHost,
          entry.args.map((a) => a.toLowerCase()),
        ) === true;
    } else if (entry.keyword === "match") {
      active = evaluateMatch(entry, walk.context);
    } else if (entry.keyword === "include") {
      if (!active) continue;
      if (depth >= 16) throw configError(entry.file, entry.line, "Include nests too deeply.");
      for (const pattern of entry.args) {
        for (const file of includeFiles(pattern, walk.home)) {
          const included = readConfigFile(file);
          if (included) walkConfig(included, depth + 1, walk);
        }
      }
    } else if (active) {
      applyEntry(entry, walk.config, walk.context);
    }
  }
}

/**
 * Resolves the settings for `host` from an ssh_config file, as OpenSSH does: every matching
 * `Host` (patterns, `*` `?` wildcards, `!` negation) and `Match` block applies, and for each
 * setting the first value found wins (IdentityFile accumulates). `Include` is followed.
 * A missing file is an empty config.
 */
export function resolveHostConfig(
  host: string,
  configPath: string,
  options: { home?: string; defaultUser?: string } = {},
): HostConfig {
  const walk: Walk = {
    config: { identityFiles: [] },
    context: {
      host,
      originalHost: host.toLowerCase(),
      hostName: host.toLowerCase(),
      user: undefined,
      defaultUser: options.defaultUser ?? userInfo().username,
    },
    home: options.home ?? homedir(),
  };
  const lines = readConfigFile(configPath);
  if (lines) walkConfig(lines, 0, walk);
  return walk.config;
}

/** One hop of a ProxyJump list: `[user@]host[:port]` or `ssh://[user@]host[:port]`. */
export interface JumpSpec {
  host: string;
  user?: string;
  port?: number;
}

/** A ProxyJump hop's host or user as the origin of a name, with how to write one. */
function jumpOrigin(part: "host" | "user", rule: string): NameOrigin {
  return {
    option: `ProxyJump ${part}`,
    fix: `Fix the ProxyJump line in your SSH config: use ${rule}.`,
  };
}

/** Parses a ProxyJump value (comma-separated hops, first hop first). */
export function parseProxyJump(value: string): JumpSpec[] {
  return value.split(",").map((raw) => {
    let text = raw.trim();
    if (text.startsWith("ssh://")) text = text.slice("ssh://".length).replace(/\/$/, "");
    const m = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:@]+)(?::(\d+))?$/.exec(text);
    if (!m?.[2]) {
      throw new SheepdogError(
        "SSH_CONFIG",
        source,
        `ProxyJump "${raw}" is not [user@]host[:port]. Fix the ProxyJump line in your SSH config.`,
      );
    }
    const spec: JumpSpec = { host: m[2].replace(/^\[(.*)\]$/, "$1") };
    checkHostName(spec.host, jumpOrigin("host", hostNameRule));
    if (m[1]) {
      checkUserName(m[1], jumpOrigin("user", userNameRule));
      spec.user = m[1];
    }
    if (m[3]) {
      const port = Number(m[3]);
      if (port < 1 || port > 65535) {
        throw new SheepdogError(
          "SSH_CONFIG",
          source,
          `ProxyJump "${raw}" has port ${m[3]}, which is not a port. Use 1 to 65535.`,
        );
      }
      spec.port = port;
    }
    return spec;
  });
}
