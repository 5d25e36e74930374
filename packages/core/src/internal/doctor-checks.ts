import { accessSync, constants, existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Remote, RequestId } from "@sheepdog/contracts";
import { SheepdogError, shellQuote } from "@sheepdog/contracts";
import { py } from "@sheepdog/serialise";
import type { ResolvedConfig } from "../config.js";
import type { MapProgress } from "../types.js";
import type { Context } from "./context.js";
import { isPostgresUrl } from "./defaults/store.js";
import { messageOf } from "./error-text.js";
import { mapSettled } from "./maps.js";
import { canTunnel, HEAD_NODE_PYTHON, Relay } from "./relay.js";
import { jobsOf } from "./request-meta.js";
import { probe } from "./routes.js";
import { source } from "./source.js";
import { workerHost } from "./worker-host.js";

/*
 * The checks of `doctor`, one function per step: each resolves with what it found, or
 * throws what went wrong; doctor.ts turns that into the report.
 */

/** What a check found: a sentence, and what to change when it is a failure. */
export interface Finding {
  ok: boolean;
  detail: string;
  fix?: string;
}

/** The oldest Python the worker and the relay run on. */
const OLDEST_PYTHON: readonly [number, number] = [3, 8];

/** Whether the dbfile can be written where it is (a PostgreSQL URL is not checked here). */
export function dbfileFinding(dbfile: string): Finding {
  if (isPostgresUrl(dbfile)) {
    return { ok: true, detail: "dbfile is a PostgreSQL database (checked when a map opens it)" };
  }
  const path = resolve(dbfile);
  const target = existsSync(path) ? path : dirname(path);
  try {
    accessSync(target, constants.W_OK);
    return { ok: true, detail: `dbfile ${path} can be written` };
  } catch {
    return {
      ok: false,
      detail: `dbfile ${path} cannot be written (${target} is not writable, or does not exist)`,
      fix: "Set dbfile (--dbfile, SHEEPDOG_DBFILE) to a file in a directory you can write.",
    };
  }
}

/** The Python interpreter `shell` on `remote`: its version, if it runs and is new enough. */
export async function pythonFinding(
  remote: Remote,
  shell: string,
  where: string,
): Promise<Finding> {
  const fix = `Set shell (--shell, SHEEPDOG_SHELL) to a Python ${OLDEST_PYTHON.join(".")} or later that ${where} has, such as /usr/bin/python3.`;
  const program = "import sys; print('%d.%d.%d' % sys.version_info[:3])";
  const result = await remote.exec(`${shellQuote(shell)} -c ${shellQuote(program)}`, {
    timeoutMs: 30_000,
  });
  const version = /^(\d+)\.(\d+)\.(\d+)$/.exec(result.stdout.trim());
  if (result.code !== 0 || !version) {
    const said = (result.stderr.trim().split("\n").at(-1) ?? "").slice(0, 200);
    const status = result.code ?? result.signal;
    return {
      ok: false,
      detail: `${shell} does not run on ${where} (exit status ${status}${said ? `: ${said}` : ""})`,
      fix,
    };
  }
  const [major, minor] = [Number(version[1]), Number(version[2])];
  const [oldestMajor, oldestMinor] = OLDEST_PYTHON;
  if (major < oldestMajor || (major === oldestMajor && minor < oldestMinor)) {
    return { ok: false, detail: `${shell} on ${where} is Python ${version[0]}, too old`, fix };
  }
  return { ok: true, detail: `${shell} on ${where} is Python ${version[0]}` };
}

/** What the route checks found, and whether the routes `connect` allows are enough. */
export interface RouteFindings {
  direct: Finding;
  relay: Finding;
  /** Whether the workers of a map with this `connect` have a route back. */
  usable: boolean;
}

/** The direct route: whether the head node reaches this machine's server at its URL. */
async function directFound(context: Context, remote: Remote, settings: ResolvedConfig) {
  const server = await context.runtime.server(context, settings.port);
  try {
    // The name the workers of a map would be given: the tasks run on the cluster's nodes.
    const url = `http://${await workerHost(settings, undefined)}:${server.port}`;
    return { url, found: await probe(remote, url).catch(messageOf) };
  } finally {
    await server.close();
  }
}

/** The relayed route: a relay started on the head node, and a probe of the server through it. */
async function relayFound(context: Context, remote: Remote, settings: ResolvedConfig) {
  if (!canTunnel(remote)) return { url: "", found: `${remote.name} cannot forward ports` };
  const server = await context.runtime.server(context, settings.port);
  const relay = new Relay(remote, server);
  try {
    const { url } = await relay.open();
    return { url, found: await probe(remote, url) };
  } catch (error) {
    return { url: "", found: `the relay did not start: ${messageOf(error)}` };
  } finally {
    await relay.close();
    await server.close();
  }
}

/** Checks both routes back to this machine from the head node. */
export async function routeFindings(
  context: Context,
  remote: Remote,
  settings: ResolvedConfig,
): Promise<RouteFindings> {
  const { connect } = settings;
  const python = HEAD_NODE_PYTHON;
  const direct = await directFound(context, remote, settings);
  const relay = await relayFound(context, remote, settings);
  const directOk = direct.found === "ok";
  const relayOk = relay.found === "ok";
  const usable =
    connect === "direct" ? directOk : connect === "relay" ? relayOk : directOk || relayOk;
  const reachable =
    "set localhost (--localhost, SHEEPDOG_LOCALHOST) to a name of this machine that the cluster's nodes can reach";
  return {
    usable,
    direct: directOk
      ? { ok: true, detail: `the head node reached this machine's server at ${direct.url}` }
      : {
          ok: false,
          detail: `the head node cannot reach this machine's server at ${direct.url} (${direct.found})${connect !== "direct" && relayOk ? `, so the workers go through the relay (connect is "${connect}")` : ""}`,
          fix:
            connect === "direct"
              ? `Set connect to "auto" (the default) or "relay" (--connect, SHEEPDOG_CONNECT) to reach this machine through the head node over SSH, or ${reachable}.`
              : relayOk
                ? `Nothing needs to change while the relay works; to let the nodes reach this machine directly, ${reachable}.`
                : `Make the relay work (below), or ${reachable}.`,
        },
    relay: relayOk
      ? {
          ok: true,
          detail: `a relay on the head node at ${relay.url} carried a connection back to this machine's server`,
        }
      : {
          ok: false,
          detail: `no relay on the head node reaches this machine (${relay.found})`,
          fix:
            connect === "direct"
              ? `Nothing needs to change while connect is "direct"; for the relay, check that ${python} runs on the head node and that its sshd allows port forwarding (AllowTcpForwarding).`
              : `Check that ${python} (3.8 or later, on the login PATH) runs on the head node and that its sshd allows port forwarding (AllowTcpForwarding, yes by default)${connect === "relay" ? ', or set connect to "auto"' : ""}.`,
        },
  };
}

/** The one-call map's function: the Python version and the name of the node it ran on. */
const nodeFacts = py<[], [string, string]>`
def sheepdog_doctor():
    import platform
    return [platform.python_version(), platform.node()]
`;

/** Why the map step was stopped: the user, or its own timeout. */
const TIMED_OUT = Symbol("timed out");

/**
 * A map of one call on the cluster, with the configuration's settings (`connect` included),
 * bounded by `timeoutSeconds`: the node's Python and its route back, proven end to end.
 */
export async function mapFinding(
  context: Context,
  settings: ResolvedConfig,
  timeoutSeconds: number,
  signal: AbortSignal | undefined,
): Promise<Finding> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(TIMED_OUT), timeoutSeconds * 1000);
  let last: MapProgress | undefined;
  const started = Date.now();
  try {
    const settled = await mapSettled<[string, string]>(context, settings, nodeFacts, [[]], {
      signal: signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal,
      onProgress: (progress) => {
        last = progress;
      },
    });
    const [outcome] = settled.results;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (outcome?.ok) {
      const [version, node] = outcome.value;
      return {
        ok: true,
        detail: `a one-call map ran on ${node} with Python ${version} and reported back (connect is "${settings.connect}") in ${seconds} s`,
      };
    }
    return taskFailed(settings, outcome?.error ?? "no outcome");
  } catch (error) {
    if (timeout.signal.aborted && !signal?.aborted) {
      return timedOut(context, settings, timeoutSeconds, last);
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function taskFailed(settings: ResolvedConfig, error: string): Finding {
  const lines = error.trimEnd().split("\n");
  return {
    ok: false,
    detail: `the one-call map's task failed: ${lines.slice(-6).join("\n")}`,
    fix: `Check that shell (${settings.shell}) is a Python 3.8 or later on the cluster's nodes, and the job's options (geOpts, slurmOpts, resources).`,
  };
}

async function timedOut(
  context: Context,
  settings: ResolvedConfig,
  timeoutSeconds: number,
  last: MapProgress | undefined,
): Promise<Finding> {
  const job = last ? await jobOf(context, last.request) : undefined;
  const named = job ? `the test job (${job})` : "the test job";
  const fix = `Run doctor again with a longer timeout (--timeout <seconds>, timeoutSeconds), and see the queue with the scheduler's own command (qstat, squeue).`;
  if (last && last.running > 0) {
    return {
      ok: false,
      detail: `${named} was running but had not reported after ${timeoutSeconds} s, so it was cancelled`,
      fix: `${fix} A task that runs but never reports cannot reach this machine (connect is "${settings.connect}").`,
    };
  }
  return {
    ok: false,
    detail: `${named} was still queued after ${timeoutSeconds} s, so it was cancelled: the queue is busy, or it cannot start a job with these options`,
    fix,
  };
}

/** The scheduler's name and id of a request's job, for messages. */
async function jobOf(context: Context, request: RequestId): Promise<string | undefined> {
  try {
    const job = jobsOf((await context.store.getRequest(request)).meta).at(-1);
    return job ? `${job.scheduler} job ${job.id}` : undefined;
  } catch {
    return undefined;
  }
}

/** A timeout in seconds for the one-call map, checked. */
export function checkTimeout(value: unknown): number {
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return value;
  throw new SheepdogError(
    "CONFIG_INVALID",
    source,
    `timeoutSeconds must be a positive number of seconds, not ${JSON.stringify(value)}.`,
  );
}
