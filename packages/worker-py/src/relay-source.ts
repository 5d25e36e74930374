import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SheepdogError, shellQuote } from "@sheepdog/contracts";
import { source } from "./internal/source.js";

/**
 * The absolute path of `sheepdog_relay.py`: the relay that carries workers' connections from
 * a cluster's head node back to the client (stdlib-only Python 3.8+). It ships in this
 * package's `python/` folder.
 */
export const relayPath: string = fileURLToPath(
  new URL("../python/sheepdog_relay.py", import.meta.url),
);

let cachedSource: string | undefined;

/** The text of `sheepdog_relay.py`, read on the first call and kept after that. */
export function relaySource(): string {
  cachedSource ??= readFileSync(relayPath, "utf8");
  return cachedSource;
}

/** How to start a relay; see {@link relayCommand}. */
export interface RelayLaunch {
  /** The Python interpreter on the head node (a path or a command name). */
  python: string;
  /** The port to listen on, on every interface of the head node; 0 picks a free one. */
  listenPort: number;
  /** The port on the head node's loopback that leads back to the client's server. */
  tunnelPort: number;
  /** The client's server as the nodes would reach it directly (`host:port`), to probe. */
  direct?: string;
}

/** What a relay prints once it listens. */
export interface RelayFacts {
  /** The head node's name, as the relay found it. */
  host: string;
  port: number;
  /** `"ok"` when the direct route answered from the head node, else why not; `null` when not probed. */
  direct: string | null;
}

function checkPort(value: number, field: string, lowest: number): void {
  if (!Number.isInteger(value) || value < lowest || value > 65535) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `RelayLaunch.${field} must be a port from ${lowest} to 65535, not ${String(value)}.`,
    );
  }
}

function checkPython(python: string): void {
  if (typeof python !== "string" || !/^[^\0\n\r]+$/.test(python)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      "RelayLaunch.python must name a Python interpreter.",
    );
  }
}

/**
 * The shell command that runs the relay on the head node in place of the login shell
 * (`exec`), so that it ends with the SSH session that started it.
 */
export function relayCommand(launch: RelayLaunch): string {
  checkPort(launch.listenPort, "listenPort", 0);
  checkPort(launch.tunnelPort, "tunnelPort", 1);
  checkPython(launch.python);
  const words = [
    "exec",
    shellQuote(launch.python),
    "-c",
    shellQuote(relaySource()),
    String(launch.listenPort),
    String(launch.tunnelPort),
  ];
  if (launch.direct !== undefined) words.push(shellQuote(launch.direct));
  return words.join(" ");
}

/**
 * The shell command that only probes the direct route from the head node (`host:port`): it
 * prints `{"direct": "ok" | why not}` and exits.
 */
export function probeCommand(python: string, direct: string): string {
  checkPython(python);
  const program = shellQuote(relaySource());
  return ["exec", shellQuote(python), "-c", program, "probe", shellQuote(direct)].join(" ");
}

/** What a probe printed: `"ok"`, or why the direct route did not answer; `undefined` if unreadable. */
export function parseProbe(stdout: string): string | undefined {
  try {
    const direct = (JSON.parse(stdout.trim()) as { direct?: unknown } | null)?.direct;
    return typeof direct === "string" ? direct : undefined;
  } catch {
    return undefined;
  }
}

/** The facts of a relay's first line of output, or `undefined` when it is not one. */
export function parseRelayFacts(line: string): RelayFacts | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  const facts = value as Partial<RelayFacts> | null;
  if (
    typeof facts?.host !== "string" ||
    !/^[A-Za-z0-9._-]{1,253}$/.test(facts.host) ||
    typeof facts.port !== "number" ||
    !Number.isInteger(facts.port) ||
    facts.port < 1 ||
    facts.port > 65535 ||
    !(facts.direct === null || typeof facts.direct === "string")
  ) {
    return undefined;
  }
  return { host: facts.host, port: facts.port, direct: facts.direct };
}
