import { hostname } from "node:os";
import type { Remote, RequestId, RequestMeta, Store, TaskHeader } from "@sheepdog/contracts";
import {
  encodePack,
  indexRuns,
  layoutOf,
  macKey,
  SheepdogError,
  taskRange,
  WIRE_VERSION,
} from "@sheepdog/contracts";
import type { Context } from "./context.js";
import { source } from "./source.js";

/*
 * A detached request on the cluster: `<sshDir>/<job name>.d/`, the user's alone, holds
 * `request.json` (what `sheepdog cleanup` shows of it), one pack of staged tasks per job
 * (`tasks-<taskOffset>.pack`) and `spool/`, where workers leave the reports the server could
 * not take. The token file stays beside it (`<sshDir>/<job name>.token`). Everything goes
 * when every task of the request has its report (see `collect.ts`).
 */

/** Where a detached request's files are on the cluster (relative to the home directory unless absolute). */
export interface StagedPaths {
  /** The request's directory. */
  dir: string;
  /** Where its workers spool reports. */
  spoolDir: string;
}

/** What `request.json` holds: enough for a person to know whose files these are. */
export interface StagedManifest {
  request: RequestId;
  name: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** The machine that submitted it. */
  client: string;
  /** The dbfile (or store) that has the request, when it has a name. */
  store?: string;
}

/** The staged directory of the job named `name` under `sshDir`. */
export function stagedPathsOf(sshDir: string, name: string): StagedPaths {
  const dir = `${sshDir.replace(/(.)\/+$/, "$1")}/${name}.d`;
  return { dir, spoolDir: `${dir}/spool` };
}

function hasControlCharacter(text: string): boolean {
  for (let at = 0; at < text.length; at++) {
    const code = text.charCodeAt(at);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/**
 * The staged paths request `id`'s meta records, if it is detached. They reach commands on the
 * head node, and a results file is no place to take a path from unchecked: they must be what
 * submission made of the request's own job name (`<dir>/sheepdog_<id>_<hex>.d` and its
 * `spool`), with no `.` or `..` part; anything else is `STORE_CORRUPT`.
 */
export function stagedOf(meta: RequestMeta, id: RequestId): StagedPaths | undefined {
  const staged = meta.staged as Partial<StagedPaths> | undefined;
  if (staged === undefined) return undefined;
  const dir = staged.dir;
  const jobName = (meta.job as { name?: unknown } | undefined)?.name;
  const slash = typeof dir === "string" ? dir.lastIndexOf("/") : -1;
  const valid =
    typeof dir === "string" &&
    staged.spoolDir === `${dir}/spool` &&
    typeof jobName === "string" &&
    new RegExp(`^sheepdog_${id}_[0-9a-f]{8}$`).test(jobName) &&
    dir.slice(slash + 1) === `${jobName}.d` &&
    dir
      .split("/")
      .every((part, at) => (part !== "" || at === 0) && part !== "." && part !== "..") &&
    !hasControlCharacter(dir);
  if (!valid) {
    throw new SheepdogError(
      "STORE_CORRUPT",
      source,
      `Request ${id}'s record of its staged files on the cluster (${JSON.stringify(meta.staged)}) is not what Sheepdog writes, so nothing is read or removed there. Check that the dbfile is yours and was not edited; run "sheepdog cleanup --dry-run" to list the staged directories.`,
    );
  }
  return { dir, spoolDir: staged.spoolDir as string };
}

/** What staging needs of a submission. */
export interface StagingTarget {
  context: Context;
  request: RequestId;
  name: string;
  staged: StagedPaths;
  remote: Remote;
}

/**
 * Creates the request's directory and spool (mode 0700, in the job directory that the token
 * file's writer checked is the user's alone) and its manifest.
 */
export async function createStagedDirectory(target: StagingTarget): Promise<void> {
  const { remote, staged, context } = target;
  await remote.mkdir(staged.dir, 0o700);
  await remote.mkdir(staged.spoolDir, 0o700);
  const manifest: StagedManifest = {
    request: target.request,
    name: target.name,
    createdAt: Date.now(),
    client: hostname(),
    ...(!context.storeKey.startsWith("store:") && { store: context.storeKey }),
  };
  await remote.upload(`${staged.dir}/request.json`, `${JSON.stringify(manifest)}\n`, 0o600);
}

/**
 * Stages the tasks `taskOffset + 1 .. taskOffset + tasks` of a request (one job's) as a pack,
 * signed under the request's key, and resolves with its path for the workers' `stagedTasks`.
 * Arguments are read from the store, one range per run of consecutive indices.
 */
export async function stagePack(
  target: StagingTarget,
  job: { taskOffset: number; tasks: number },
): Promise<string> {
  const { store } = target.context;
  const info = await store.getRequest(target.request);
  const layout = layoutOf(info.meta, info.tasks);
  const tasks: { header: TaskHeader; args: Uint8Array[] }[] = [];
  for (let task = job.taskOffset + 1; task <= job.taskOffset + job.tasks; task++) {
    tasks.push(await stagedTask(store, target.request, layout, task));
  }
  const pack = encodePack(macKey(info.tokenHash), {
    request: target.request,
    taskOffset: job.taskOffset,
    func: info.func,
    ns: info.ns,
    tasks,
  });
  const path = `${target.staged.dir}/tasks-${job.taskOffset}.pack`;
  await target.remote.upload(path, pack, 0o600);
  return path;
}

async function stagedTask(
  store: Store,
  request: RequestId,
  layout: ReturnType<typeof layoutOf>,
  task: number,
): Promise<{ header: TaskHeader; args: Uint8Array[] }> {
  const range = taskRange(layout, task);
  if (range === undefined) {
    throw new SheepdogError(
      "INTERNAL",
      source,
      `Task ${task} of request ${request} is not in its layout, so it cannot be staged.`,
    );
  }
  const indices = range.indices ?? [];
  const runs = range.indices ? indexRuns(indices) : [{ first: range.first, count: range.count }];
  const args: Uint8Array[] = [];
  for (const run of runs) args.push(...(await store.getArgs(request, run.first, run.count)));
  const header: TaskHeader = {
    version: WIRE_VERSION,
    request,
    task,
    first: range.first,
    count: range.count,
    ...(range.indices && { indices: [...range.indices] }),
  };
  return { header, args };
}
