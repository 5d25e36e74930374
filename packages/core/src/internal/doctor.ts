import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Remote, Scheduler } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { ResolvedConfig, SheepdogConfig } from "../config.js";
import { resolveConfig } from "../config.js";
import { instanceContext } from "../sheepdog.js";
import type { ClusterLease } from "./context.js";
import { Runtime } from "./context.js";
import {
  detectScheduler,
  openDefaultCluster,
  openDefaultRemote,
  openScheduler,
} from "./defaults/cluster.js";
import type { Finding } from "./doctor-checks.js";
import {
  checkTimeout,
  dbfileFinding,
  mapFinding,
  pythonFinding,
  routeFindings,
} from "./doctor-checks.js";
import { messageOf } from "./error-text.js";
import { attemptOptionsOf, checkAttemptOptions } from "./submit.js";

/** The steps of {@link doctor}, in the order they run. */
export const doctorStepIds = [
  "configuration",
  "ssh",
  "scheduler",
  "python",
  "direct",
  "relay",
  "map",
] as const;

/** One of {@link doctorStepIds}. */
export type DoctorStepId = (typeof doctorStepIds)[number];

/** One step of a {@link DoctorReport}. */
export interface DoctorStep {
  /** Which step, for programs: one of {@link doctorStepIds}. */
  id: DoctorStepId;
  /** The step in words: "SSH login and host key". */
  name: string;
  /** `"skipped"` when an earlier step it needs failed. */
  status: "ok" | "failed" | "skipped";
  /** What the step found, or why it was skipped. */
  detail: string;
  /** What to change, for a step that failed. */
  fix?: string;
}

/** What {@link doctor} found. */
export interface DoctorReport {
  /**
   * True only when a map with this configuration would work: every step passed, except that
   * of the two routes back (direct and relayed) the one that `connect` uses is enough (with
   * `"auto"`, either).
   */
  ok: boolean;
  steps: DoctorStep[];
}

/** Options of {@link doctor}. */
export interface DoctorOptions {
  /**
   * How long the one-call map may take, in seconds, waiting in the queue included: a busy
   * queue makes that step fail saying so, rather than wait. @default 120
   */
  timeoutSeconds?: number;
  /** Aborting it stops the checks (and cancels the one-call map's job). */
  signal?: AbortSignal;
  /** Called with each step as it ends, for a live report. */
  onStep?: (step: DoctorStep) => void;
}

/** What the checks open; the defaults, or small fakes in tests. */
export interface DoctorBackends {
  /** Logs in to the head node. */
  login(config: ResolvedConfig): Promise<Remote>;
  /** Which scheduler the head node has (for `scheduler: "auto"`). */
  detectScheduler(remote: Remote): Promise<string>;
  /** The scheduler named over `remote`. */
  scheduler(remote: Remote, name: string): Promise<Scheduler>;
  /** The cluster of `host: "local"`. */
  local(config: ResolvedConfig, runtime: Runtime): Promise<ClusterLease>;
}

const defaultBackends: DoctorBackends = {
  login: openDefaultRemote,
  detectScheduler,
  scheduler: (remote, name) => openScheduler(remote, name === "slurm" ? "slurm" : "gridengine"),
  local: (config, runtime) =>
    openDefaultCluster(config, () => runtime.localScheduler(config.concurrency)),
};

const stepNames: Record<DoctorStepId, string> = {
  configuration: "configuration",
  ssh: "SSH login and host key",
  scheduler: "the scheduler",
  python: "Python on the head node",
  direct: "the route back to this machine, direct",
  relay: "the route back to this machine, relayed",
  map: "Python and the route back on a node",
};

/** The names of the steps that differ with `host: "local"`. */
const localNames: Partial<Record<DoctorStepId, string>> = {
  python: "Python on this machine",
  map: "a one-call map on this machine",
};

/** The steps as they end, and whether the workers have a route back. */
class Steps {
  readonly list: DoctorStep[] = [];
  routeUsable = false;
  /** Whether the tasks run on this machine (`host: "local"`), which names some steps. */
  local = false;

  constructor(private readonly onStep: DoctorOptions["onStep"]) {}

  #name(id: DoctorStepId): string {
    return (this.local ? localNames[id] : undefined) ?? stepNames[id];
  }

  add(id: DoctorStepId, finding: Finding): void {
    const name = this.#name(id);
    const status = finding.ok ? "ok" : "failed";
    this.#push({
      id,
      name,
      status,
      detail: finding.detail,
      ...(finding.fix && { fix: finding.fix }),
    });
  }

  skip(ids: DoctorStepId[], why: string): void {
    for (const id of ids) this.#push({ id, name: this.#name(id), status: "skipped", detail: why });
  }

  #push(step: DoctorStep): void {
    this.list.push(step);
    try {
      this.onStep?.(step);
    } catch {
      // A listener's failure is its own; the checks go on.
    }
  }

  report(): DoctorReport {
    const ok = this.list.every(
      (step) =>
        step.status === "ok" || ((step.id === "direct" || step.id === "relay") && this.routeUsable),
    );
    return { ok, steps: this.list };
  }
}

/**
 * Checks each step a map needs, in order, and says which failed and what to change: the
 * configuration; the SSH login and the head node's host key; the scheduler (which one, and
 * that its commands answer); Python on the head node; the route back to this machine from the
 * head node, direct and through a relay; and a real one-call map, which proves Python on a
 * node and its route back. With `host: "local"`, Python on this machine and a local map.
 * Nothing is left behind: the map's request goes to a scratch database, removed after.
 *
 * @example
 * ```ts
 * const report = await doctor({ host: "fear" });
 * for (const step of report.steps) console.log(step.status, step.name, step.detail);
 * if (!report.ok) process.exitCode = 1;
 * ```
 */
export function doctor(
  config: Partial<SheepdogConfig> | undefined,
  options: DoctorOptions = {},
): Promise<DoctorReport> {
  return diagnose(config, options, defaultBackends);
}

/** {@link doctor} over the backends given. */
export async function diagnose(
  config: Partial<SheepdogConfig> | undefined,
  options: DoctorOptions,
  backends: DoctorBackends,
): Promise<DoctorReport> {
  const timeoutSeconds = checkTimeout(options.timeoutSeconds ?? 120);
  const steps = new Steps(options.onStep);
  let settings: ResolvedConfig;
  try {
    settings = resolveConfig(config).config;
  } catch (error) {
    if (!SheepdogError.isInstance(error)) throw error;
    steps.add("configuration", {
      ok: false,
      detail: messageOf(error),
      fix: "Change the setting the message names (a flag, a SHEEPDOG_* variable, or the configuration file).",
    });
    steps.local = (config?.host ?? process.env.SHEEPDOG_HOST) === "local";
    steps.skip(
      steps.local ? ["python", "map"] : doctorStepIds.slice(1),
      "the configuration is invalid",
    );
    return steps.report();
  }
  const dbfile = dbfileFinding(settings.dbfile);
  steps.add("configuration", {
    ...dbfile,
    detail: `host "${settings.host}", scheduler "${settings.scheduler}", connect "${settings.connect}"; ${dbfile.detail}`,
  });
  const scratch = mkdtempSync(join(tmpdir(), "sheepdog-doctor-"));
  const runtime = new Runtime({ handleSignals: false });
  // The one-call map's request goes to a scratch database, not to the user's dbfile.
  const run: ResolvedConfig = { ...settings, dbfile: join(scratch, "doctor.sqlite") };
  const check = { steps, runtime, run, backends, timeoutSeconds, signal: options.signal };
  try {
    steps.local = settings.host === "local";
    if (steps.local) await checkLocal(check);
    else await checkCluster(check);
  } finally {
    await runtime.close();
    rmSync(scratch, { recursive: true, force: true });
  }
  return steps.report();
}

/** What the checks of one doctor run share. */
interface Check {
  steps: Steps;
  runtime: Runtime;
  run: ResolvedConfig;
  backends: DoctorBackends;
  timeoutSeconds: number;
  signal: AbortSignal | undefined;
}

/** A finding from a check, or a failure with what it threw (an abort by the caller rethrown). */
async function attempt(
  check: Check,
  run: () => Promise<Finding>,
  fix: (error: unknown) => string,
): Promise<Finding> {
  try {
    return await run();
  } catch (error) {
    if (check.signal?.aborted) throw error;
    return { ok: false, detail: messageOf(error), fix: fix(error) };
  }
}

async function checkLocal(check: Check): Promise<void> {
  const { steps, run } = check;
  const lease = await check.backends.local(run, check.runtime);
  try {
    const python = await attempt(
      check,
      () => pythonFinding(lease.cluster.remote, run.shell, "this machine"),
      () => "Set shell (--shell, SHEEPDOG_SHELL) to a Python 3.8 or later on this machine.",
    );
    steps.add("python", python);
    if (!python.ok) {
      steps.skip(["map"], "it needs Python (above)");
      return;
    }
    const context = await instanceContext(check.runtime, run, { cluster: lease.cluster })();
    const map = await attempt(
      check,
      () => mapFinding(context, run, check.timeoutSeconds, check.signal),
      () => `Check that shell (${run.shell}) runs Python 3.8 or later here.`,
    );
    steps.add("map", map);
  } finally {
    await lease.release();
  }
}

/** How to fix a failed SSH login: the host key's own command, or the login settings. */
function sshFix(error: unknown): string {
  const code = SheepdogError.isInstance(error) ? error.code : undefined;
  if (code === "SSH_HOST_KEY_UNKNOWN") {
    const command = (error as { keyscanCommand?: unknown }).keyscanCommand;
    return `Add the head node's host key to known_hosts${typeof command === "string" ? ` ("${command}")` : ""} after checking its fingerprint, or set sshKnownHosts (--ssh-known-hosts, SHEEPDOG_SSH_KNOWN_HOSTS) to a file that holds it.`;
  }
  if (code === "SSH_HOST_KEY_CHANGED") {
    return "Find out why the head node's host key changed before anything else; if the change is expected, replace its key in known_hosts (sshKnownHosts).";
  }
  return 'Check host, sshUser, sshPort and sshKeyfile (or ~/.ssh/config), until "ssh <host> true" logs in without a prompt.';
}

async function checkCluster(check: Check): Promise<void> {
  const { steps, run, backends } = check;
  let remote: Remote;
  try {
    remote = await backends.login(run);
  } catch (error) {
    if (check.signal?.aborted) throw error;
    steps.add("ssh", { ok: false, detail: messageOf(error), fix: sshFix(error) });
    steps.skip(doctorStepIds.slice(2), "there is no SSH connection to the head node (above)");
    return;
  }
  let scheduler: Scheduler | undefined;
  try {
    steps.add("ssh", { ok: true, detail: `logged in to ${remote.name}; its host key is known` });
    scheduler = await checkScheduler(check, remote);
    await checkRoutesAndMap(check, remote, scheduler);
  } finally {
    await scheduler?.close?.();
    await remote.close();
  }
}

/** The scheduler step: which scheduler, that the options suit it, and that its commands answer. */
async function checkScheduler(check: Check, remote: Remote): Promise<Scheduler | undefined> {
  const { run, backends } = check;
  let scheduler: Scheduler | undefined;
  const finding = await attempt(
    check,
    async () => {
      const auto = run.scheduler === "auto";
      const name = auto ? await backends.detectScheduler(remote) : run.scheduler;
      scheduler = await backends.scheduler(remote, name);
      checkAttemptOptions(scheduler, attemptOptionsOf(run));
      const slots = await scheduler.slots?.();
      const how = auto ? "found on the head node" : 'as "scheduler" says';
      const answer = slots === undefined ? "" : `; its commands answer (${slots} slots)`;
      return { ok: true, detail: `${name}, ${how}${answer}` };
    },
    () =>
      'Set scheduler ("gridengine" or "slurm"; --scheduler, SHEEPDOG_SCHEDULER) to the head node\'s scheduler, and check that its commands run in a non-interactive login there; or change the option the message names.',
  );
  check.steps.add("scheduler", finding);
  if (finding.ok) return scheduler;
  await scheduler?.close?.();
  return undefined;
}

/** Python on the head node, the routes back, and the one-call map, each if it can run. */
async function checkRoutesAndMap(
  check: Check,
  remote: Remote,
  scheduler: Scheduler | undefined,
): Promise<void> {
  const { steps, run } = check;
  const python = await attempt(
    check,
    () => pythonFinding(remote, run.shell, "the head node"),
    () => "Set shell (--shell, SHEEPDOG_SHELL) to a Python 3.8 or later on the head node.",
  );
  steps.add("python", python);
  const cluster = scheduler && { scheduler, remote };
  const context = await instanceContext(check.runtime, run, cluster ? { cluster } : {})();
  if (!python.ok) {
    steps.skip(["direct", "relay", "map"], "they need Python on the head node (above)");
    return;
  }
  const routes = await routeFindings(context, remote, run);
  steps.add("direct", routes.direct);
  steps.add("relay", routes.relay);
  steps.routeUsable = routes.usable;
  if (!scheduler) {
    steps.skip(["map"], "it needs the scheduler (above)");
  } else if (!routes.usable) {
    steps.skip(
      ["map"],
      `no route back to this machine that connect "${run.connect}" uses works (above)`,
    );
  } else {
    const map = await attempt(
      check,
      () => mapFinding(context, run, check.timeoutSeconds, check.signal),
      () =>
        `Check that shell (${run.shell}) is a Python 3.8 or later on the cluster's nodes, and the job's options (geOpts, slurmOpts, resources).`,
    );
    steps.add("map", map);
  }
}
