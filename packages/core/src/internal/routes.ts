import type { Remote } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { SheepdogServer } from "@sheepdog/server";
import { parseProbe, probeCommand } from "@sheepdog/worker-py";
import type { ConnectChoice } from "../config.js";
import { messageOf } from "./error-text.js";
import { canTunnel, HEAD_NODE_PYTHON, Relay } from "./relay.js";
import type { RelayUse } from "./shared-relays.js";
import { useRelay } from "./shared-relays.js";
import { source } from "./source.js";

/** How the workers of one map reach its server, and what keeps those routes open. */
export interface WorkerRoutes {
  /** The URLs the workers try, in order. */
  urls: string[];
  /** Whether the route is a relay on the head node (workers then ride out its restarts). */
  relayed: boolean;
  /** The relay's `host:port`, kept with the request so that a later server can restart it. */
  relay?: string;
  /** Which route was chosen and why, for verbose output. */
  why: string;
  /** Ends what was opened for the routes (the relay and its tunnel). Idempotent. */
  close(): Promise<void>;
}

/** What {@link openRoutes} needs. */
export interface RouteOptions {
  connect: ConnectChoice;
  remote: Remote;
  server: SheepdogServer;
  /** The server's URL for workers that reach this machine directly. */
  direct: string;
  /** Whether the tasks run on this machine (then the route is always direct). */
  runsHere: boolean;
}

const PROBE_TIMEOUT_MS = 30_000;

/** `host:port` of a URL. */
function authorityOf(url: string): string {
  return new URL(url).host;
}

function directOnly(direct: string, why: string): WorkerRoutes {
  return { urls: [direct], relayed: false, why, close: async () => {} };
}

/**
 * Opens the routes of `connect`: `"direct"` checks from the head node that the server
 * answers there; `"relay"` starts a relay on the head node; `"auto"` does both at once and
 * puts first the route that works.
 */
export async function openRoutes(options: RouteOptions): Promise<WorkerRoutes> {
  const { connect, direct, remote } = options;
  if (options.runsHere) return directOnly(direct, "the tasks run on this machine");
  if (connect === "direct") {
    const found = await probe(remote, direct).catch((error: unknown) => {
      const why = `connect is "direct"; whether the head node reaches ${direct} is unknown (${messageOf(error)})`;
      return { why };
    });
    if (typeof found !== "string") return directOnly(direct, found.why);
    if (found !== "ok") throw unreachable(direct, found);
    return directOnly(direct, `connect is "direct", and the head node reached ${direct}`);
  }
  if (!canTunnel(remote)) {
    if (connect === "relay") throw noTunnel(remote);
    return directOnly(direct, `${remote.name} cannot forward ports, so only the direct route`);
  }
  let opened: RelayUse;
  try {
    const probed = connect === "auto" ? authorityOf(direct) : undefined;
    opened = await useRelay(remote, options.server, probed);
  } catch (error) {
    if (connect === "relay") throw error;
    return autoWithoutRelay(options, error);
  }
  const relayed = { relayed: true, relay: authorityOf(opened.url), close: opened.release };
  if (connect === "relay") {
    return { urls: [opened.url], why: `connect is "relay": ${opened.url}`, ...relayed };
  }
  if (opened.direct === "ok") {
    const why = `the head node reached ${direct} directly (the relay at ${opened.url} stands by)`;
    return { urls: [direct, opened.url], why, ...relayed };
  }
  const why = `the head node cannot reach ${direct} (${opened.direct}), so through the relay at ${opened.url}`;
  return { urls: [opened.url, direct], why, ...relayed };
}

/**
 * Starts again, for `server`, the relay an earlier process started for a request's workers
 * (its `host:port`, kept in the request's meta), when `remote` can forward ports.
 */
export async function reopenRelay(
  remote: Remote,
  server: SheepdogServer,
  authority: string,
): Promise<Relay> {
  if (!canTunnel(remote)) throw noTunnel(remote);
  const relay = new Relay(remote, server);
  try {
    await relay.reopen(authority);
    return relay;
  } catch (error) {
    await relay.close();
    throw error;
  }
}

/** `"auto"` when no relay could start: the direct route alone, unchecked if it cannot be. */
async function autoWithoutRelay(options: RouteOptions, relayError: unknown): Promise<WorkerRoutes> {
  const { direct, remote } = options;
  const reason = messageOf(relayError);
  const found = await probe(remote, direct).catch(messageOf);
  if (found === "ok") {
    return directOnly(direct, `the head node reached ${direct}; no relay (${reason})`);
  }
  return directOnly(
    direct,
    `no relay could start on ${remote.name} (${reason}), so only ${direct}, which the head node could not reach (${found}): tasks will fail if the nodes cannot either`,
  );
}

/**
 * Whether the head node reaches the server at `direct`: `"ok"`, or why not. Rejects when the
 * probe cannot run there (no python3 on the login PATH).
 */
export async function probe(remote: Remote, direct: string): Promise<string> {
  const result = await remote.exec(probeCommand(HEAD_NODE_PYTHON, authorityOf(direct)), {
    timeoutMs: PROBE_TIMEOUT_MS,
  });
  const found = result.code === 0 ? parseProbe(result.stdout) : undefined;
  if (found !== undefined) return found;
  const detail = (result.stderr.trim().split("\n").at(-1) ?? "").slice(0, 200);
  throw new SheepdogError(
    "REMOTE_FAILED",
    source,
    `Cannot check the route back to this machine from ${remote.name}: ${HEAD_NODE_PYTHON} failed there (exit ${result.code ?? result.signal}${detail ? `: ${detail}` : ""}). The relay and the check need python3 (3.8 or later) on the head node's login PATH.`,
  );
}

function unreachable(direct: string, found: string): SheepdogError {
  return new SheepdogError(
    "CONFIG_INVALID",
    source,
    `connect is "direct", but the cluster's head node cannot reach this machine's server at ${direct} (${found}). Set connect to "relay" (or "auto", the default) to reach it through the head node over SSH, or set localhost to a name of this machine that the cluster can reach.`,
  );
}

function noTunnel(remote: Remote): SheepdogError {
  return new SheepdogError(
    "CONFIG_INVALID",
    source,
    `connect is "relay", but the remote ${remote.name} cannot forward ports (it has no tunnelBack). Use an SSH remote from @sheepdog/deploy-ssh, or set connect to "direct".`,
  );
}
