import type { MacKey, Remote, RequestId, StoreReport, TaskLayout } from "@sheepdog/contracts";
import {
  decodeSpoolFile,
  layoutOf,
  macKey,
  reportWrites,
  storeReports,
  taskRange,
} from "@sheepdog/contracts";
import { purgeStaged, readSpool, removeSpooled } from "@sheepdog/worker-py";
import type { Context } from "./context.js";
import { messageOf } from "./error-text.js";
import { undecodableReason } from "./result-check.js";
import type { StagedPaths } from "./staging.js";
import { stagedOf } from "./staging.js";

/** What one collection of a detached request's spool did. */
export interface SpoolCollection {
  /** Spool files read and removed. */
  files: number;
  /** Reports stored now. */
  stored: number;
  /** Reports whose task already had one (a live post, or another collector, came first). */
  duplicates: number;
  /**
   * Files that were not written by one of the request's workers (a MAC that is not the
   * request's, a task it does not have, a malformed report), with why: removed unstored.
   */
  refused: string[];
  /** Whether the request's files on the cluster are gone: every task has its real report. */
  cleaned: boolean;
}

/** The most spool bytes one command brings back; a larger spool takes several. */
const SLICE_BYTES = 32 * 1024 * 1024;

/**
 * Brings home what the workers of a detached request spooled on the cluster: each file's MAC
 * is checked under the request's key and its reports against its task's arguments, as the
 * server checks a post; the first report of a task wins, so a report that also arrived live, or
 * that another collector stored first, counts once. A file is removed only after its reports
 * are stored, so a collection cut short (a dropped connection) loses nothing and the next one
 * finishes it. Once every task has its report, the request's files on the cluster go.
 * Resolves with `undefined` for a request that is not detached.
 */
export async function collectSpool(
  context: Context,
  id: RequestId,
  remote: Remote,
): Promise<SpoolCollection | undefined> {
  const info = await context.store.getRequest(id);
  const staged = stagedOf(info.meta, id);
  if (!staged || info.meta.stagedRemoved !== undefined) return undefined;
  const collection: SpoolCollection = {
    files: 0,
    stored: 0,
    duplicates: 0,
    refused: [],
    cleaned: false,
  };
  const reader = new SpoolReader(context, id, macKey(info.tokenHash), info.tasks);
  for (;;) {
    const { files, more } = await readSpool(remote, staged.spoolDir, SLICE_BYTES);
    if (files.length === 0) break;
    for (const file of files) await reader.store(file, collection);
    await removeSpooled(
      remote,
      staged.spoolDir,
      files.map((file) => file.name),
    );
    collection.files += files.length;
    if (more === 0) break;
  }
  collection.cleaned = await removeWhenComplete(context, id, remote, staged);
  return collection;
}

/** Checks and stores spool files of one request. */
class SpoolReader {
  #layout: TaskLayout | undefined;

  constructor(
    private readonly context: Context,
    private readonly id: RequestId,
    private readonly key: MacKey,
    private readonly tasks: number,
  ) {}

  async store(file: { name: string; bytes: Uint8Array }, collection: SpoolCollection) {
    let writes: StoreReport[];
    try {
      writes = await this.#writesOf(file);
    } catch (error) {
      collection.refused.push(`${file.name}: ${messageOf(error)}`);
      return;
    }
    const stored = await storeReports(this.context.store, this.id, writes);
    for (const now of stored) {
      if (now) collection.stored += 1;
      else collection.duplicates += 1;
    }
  }

  async #writesOf(file: { name: string; bytes: Uint8Array }): Promise<StoreReport[]> {
    const spooled = decodeSpoolFile(this.key, this.id, file.name, file.bytes);
    const range = taskRange(await this.#layoutFor(spooled.task), spooled.task);
    if (range === undefined) throw new Error(`request ${this.id} has no task ${spooled.task}`);
    // As the server does: a result that does not decode is kept as its task's error.
    return reportWrites(spooled.reports, range).map((write) => {
      if (write.kind !== "result") return write;
      const unusable = undecodableReason(write.value);
      if (unusable === undefined) return write;
      return {
        index: write.index,
        kind: "error",
        value: unusable,
        ...(write.facts && { facts: write.facts }),
      };
    });
  }

  /** The layout, read again when a task lies past the end known (a retry added tasks). */
  async #layoutFor(task: number): Promise<TaskLayout> {
    if (this.#layout === undefined || taskRange(this.#layout, task) === undefined) {
      const info = await this.context.store.getRequest(this.id);
      this.#layout = layoutOf(info.meta, this.tasks);
    }
    return this.#layout;
  }
}

/**
 * Removes a detached request's directory and token file from the cluster once every task has
 * its report and, unless `inferredDeaths`, none of them is a death the scheduler inferred (the
 * worker's real report may still be on its way through a slow shared filesystem, and would then
 * be lost: `sheepdog cleanup` removes those, after collecting once more).
 */
export async function removeWhenComplete(
  context: Context,
  id: RequestId,
  remote: Remote,
  staged: StagedPaths,
  options: { inferredDeaths?: boolean } = {},
): Promise<boolean> {
  const counts = await context.store.counts(id);
  if (counts.results + counts.errors < counts.tasks) return false;
  if (!options.inferredDeaths && (await context.store.getErrors(id)).some((r) => r.provisional)) {
    return false;
  }
  return removeStaged(context, id, remote, staged);
}

/**
 * Removes a detached request's directory and token file from the cluster and, once they are
 * gone, says so in its meta; resolves with whether they are gone.
 */
export async function removeStaged(
  context: Context,
  id: RequestId,
  remote: Remote,
  staged: StagedPaths,
): Promise<boolean> {
  const slash = staged.dir.lastIndexOf("/");
  const { failed } = await purgeStaged(remote, staged.dir.slice(0, slash), [
    staged.dir.slice(slash + 1),
  ]);
  if (failed.length > 0) return false;
  await context.store.updateMeta(id, { stagedRemoved: Date.now() });
  return true;
}
