import type { Remote, RequestId } from "@sheepdog/contracts";
import type { StagedDirectory } from "@sheepdog/worker-py";
import { listStaged, purgeStaged } from "@sheepdog/worker-py";
import type { CleanupOptions, StagedRequest } from "../types.js";
import { collectSpool, removeStaged, removeWhenComplete } from "./collect.js";
import type { Context } from "./context.js";
import { requestStatus } from "./request-ops.js";
import { stagedOf } from "./staging.js";

/**
 * What detached requests left on the cluster under `sshDir`, each brought up to date and
 * removed when nothing of it is needed any more: a request of this store whose every task has
 * its report (its spool is collected and its dead tasks recorded first). A request whose job
 * still runs, or that another store holds (or none: its dbfile is lost), is kept, unless
 * `force` (then everything listed goes). With `dryRun`, nothing is changed.
 */
export async function cleanupStaged(
  context: Context,
  sshDir: string,
  options: CleanupOptions,
): Promise<StagedRequest[]> {
  const lease = await context.openCluster();
  try {
    const { remote } = lease.cluster;
    const entries: StagedRequest[] = [];
    for (const directory of await listStaged(remote, sshDir)) {
      entries.push(await cleanupOne(context, remote, sshDir, directory, options));
    }
    return entries;
  } finally {
    await lease.release();
  }
}

async function cleanupOne(
  context: Context,
  remote: Remote,
  sshDir: string,
  directory: StagedDirectory,
  options: CleanupOptions,
): Promise<StagedRequest> {
  const manifest = directory.manifest ?? {};
  const entry: StagedRequest = {
    dir: `${sshDir.replace(/(.)\/+$/, "$1")}/${directory.dir}`,
    ...(typeof manifest.request === "number" && { request: manifest.request }),
    ...(typeof manifest.createdAt === "number" && { createdAt: manifest.createdAt }),
    ...(typeof manifest.client === "string" && { client: manifest.client }),
    ...(typeof manifest.store === "string" && { store: manifest.store }),
    spooled: directory.spooled,
    bytes: directory.bytes,
    modifiedAt: directory.modified,
    state: "other-store",
    removed: false,
  };
  const own = await ownRequest(context, entry);
  if (own !== undefined && !options.dryRun && (await removeIfDone(context, own, remote))) {
    return { ...entry, spooled: 0, state: "complete", removed: true };
  }
  if (own !== undefined) entry.state = await stateOf(context, own);
  if (options.force && !options.dryRun) {
    entry.removed =
      own !== undefined
        ? await removeStaged(context, own, remote, {
            dir: entry.dir,
            spoolDir: `${entry.dir}/spool`,
          })
        : (await purgeStaged(remote, sshDir, [directory.dir])).failed.length === 0;
  }
  return entry;
}

/**
 * Brings a request of this store up to date (its spool collected, the tasks its scheduler no
 * longer runs recorded as dead) and removes its files once every task has its report.
 */
async function removeIfDone(context: Context, id: RequestId, remote: Remote): Promise<boolean> {
  await requestStatus(context, id).catch(() => undefined);
  const { meta } = await context.store.getRequest(id);
  const staged = stagedOf(meta, id);
  if (!staged) return false;
  // What was spooled while the deaths were being recorded comes home first.
  await collectSpool(context, id, remote).catch(() => undefined);
  if (cancellationOf(meta)) {
    // Its job was cancelled: no task of it runs any more, and what they left is home.
    return removeStaged(context, id, remote, staged);
  }
  return removeWhenComplete(context, id, remote, staged, { inferredDeaths: true }).catch(
    () => false,
  );
}

function cancellationOf(meta: Record<string, unknown>): boolean {
  return typeof (meta.cancelled as { at?: unknown } | undefined)?.at === "number";
}

/** The request of this store that the directory belongs to, if any. */
async function ownRequest(context: Context, entry: StagedRequest): Promise<RequestId | undefined> {
  if (entry.request === undefined) return undefined;
  const info = await context.store.getRequest(entry.request).catch(() => undefined);
  const { request } = entry;
  // A record that is not what Sheepdog writes claims no directory (stagedOf says why elsewhere).
  const staged =
    info &&
    (() => {
      try {
        return stagedOf(info.meta, request);
      } catch {
        return undefined;
      }
    })();
  return staged?.dir === entry.dir ? request : undefined;
}

async function stateOf(context: Context, id: RequestId): Promise<StagedRequest["state"]> {
  const counts = await context.store.counts(id);
  return counts.results + counts.errors >= counts.tasks ? "complete" : "running";
}
