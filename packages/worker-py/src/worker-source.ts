import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { WorkerLaunch } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./internal/source.js";

/**
 * The absolute path of `sheepdog_worker.py`, the worker as one stdlib-only Python file
 * (Python 3.8+). It ships in this package's `python/` folder.
 */
export const workerPath: string = fileURLToPath(
  new URL("../python/sheepdog_worker.py", import.meta.url),
);

let cachedSource: string | undefined;

/**
 * The text of `sheepdog_worker.py`, read on the first call (nothing is read at import) and
 * kept after that. A job program is this plus a launch line; see {@link workerProgram}.
 */
export function workerSource(): string {
  cachedSource ??= readFileSync(workerPath, "utf8");
  return cachedSource;
}

function invalid(field: string, rule: string): SheepdogError {
  return new SheepdogError("INVALID_INPUT", source, `WorkerLaunch.${field} ${rule}.`);
}

function positiveInteger(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw invalid(field, "must be a positive integer");
  }
  return value;
}

/** An http(s) URL without a trailing slash, or `INVALID_INPUT` naming `field`. */
function checkedUrl(url: unknown, field: string): string {
  if (typeof url !== "string" || !/^https?:\/\/[^\s]+$/.test(url)) {
    throw invalid(field, 'must be an http(s) URL such as "http://head.example:8000"');
  }
  return url.replace(/\/+$/, "");
}

/** The launch settings, checked, with only the fields the worker reads. */
function checkedLaunch(launch: WorkerLaunch): WorkerLaunch {
  const tokenFile = launch.tokenFile;
  if (typeof tokenFile !== "string" || tokenFile.length === 0 || /[\0\n\r]/.test(tokenFile)) {
    throw invalid("tokenFile", "must be the path of the request's token file (one line)");
  }
  const protocol = launch.pickleProtocol;
  if (!Number.isInteger(protocol) || protocol < 2 || protocol > 5) {
    throw invalid("pickleProtocol", "must be an integer from 2 to 5");
  }
  const window = launch.retryWindowSeconds;
  if (typeof window !== "number" || !Number.isFinite(window) || window < 0) {
    throw invalid("retryWindowSeconds", "must be a number of seconds, 0 or more");
  }
  const checked: WorkerLaunch = {
    url: checkedUrl(launch.url, "url"),
    tokenFile,
    request: positiveInteger(launch.request, "request"),
    pickleProtocol: protocol,
    retryWindowSeconds: window,
  };
  if (launch.memoryLimitBytes !== undefined) {
    checked.memoryLimitBytes = positiveInteger(launch.memoryLimitBytes, "memoryLimitBytes");
  }
  if (launch.taskOffset !== undefined && launch.taskOffset !== 0) {
    const offset = launch.taskOffset;
    if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) {
      throw invalid("taskOffset", "must be a whole number, 0 or more");
    }
    checked.taskOffset = offset;
  }
  if (launch.attempt !== undefined && launch.attempt !== 1) {
    checked.attempt = positiveInteger(launch.attempt, "attempt");
  }
  if (launch.maxReplyBytes !== undefined) {
    checked.maxReplyBytes = positiveInteger(launch.maxReplyBytes, "maxReplyBytes");
  }
  if (launch.maxBodyBytes !== undefined) {
    checked.maxBodyBytes = positiveInteger(launch.maxBodyBytes, "maxBodyBytes");
  }
  if (launch.fallbackUrls !== undefined && launch.fallbackUrls.length > 0) {
    checked.fallbackUrls = launch.fallbackUrls.map((url, i) =>
      checkedUrl(url, `fallbackUrls[${i}]`),
    );
  }
  if (launch.firstContactSeconds !== undefined) {
    checked.firstContactSeconds = seconds(launch.firstContactSeconds, "firstContactSeconds");
  }
  if (launch.claimTasks !== undefined && launch.claimTasks !== false) {
    if (launch.claimTasks !== true) throw invalid("claimTasks", "must be true or false");
    checked.claimTasks = true;
  }
  return { ...checked, ...checkedStaging(launch) };
}

/** A number of seconds, 0 or more, or `INVALID_INPUT` naming `field`. */
function seconds(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw invalid(field, "must be a number of seconds, 0 or more");
  }
  return value;
}

/** A path on the cluster (one line), or `INVALID_INPUT` naming `field`. */
function clusterPath(value: unknown, field: string): string {
  if (typeof value !== "string" || value.length === 0 || /[\0\n\r]/.test(value)) {
    throw invalid(field, "must be a path on the cluster (one line)");
  }
  return value;
}

/** The launch fields of a detached request, checked: where its pack and its spool are. */
function checkedStaging(
  launch: WorkerLaunch,
): Pick<WorkerLaunch, "stagedTasks" | "spoolDir" | "spoolAfterSeconds"> {
  const staging: Pick<WorkerLaunch, "stagedTasks" | "spoolDir" | "spoolAfterSeconds"> = {};
  if (launch.stagedTasks !== undefined) {
    staging.stagedTasks = clusterPath(launch.stagedTasks, "stagedTasks");
  }
  if (launch.spoolDir !== undefined) staging.spoolDir = clusterPath(launch.spoolDir, "spoolDir");
  if (launch.spoolAfterSeconds !== undefined) {
    staging.spoolAfterSeconds = seconds(launch.spoolAfterSeconds, "spoolAfterSeconds");
  }
  return staging;
}

/**
 * A Python string literal holding `text`, which must be ASCII without control characters
 * (as {@link asciiJson} makes it).
 */
function pythonStringLiteral(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** JSON with every character outside printable ASCII escaped as `\uXXXX`. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * The whole Python program an array task runs: the worker's source followed by a call of its
 * `main` with `launch` embedded as a JSON string literal (escaped so that no value can end
 * the literal or add code). Its exit status is 0 when every report was delivered (see
 * `WORKER_EXIT_CODES`). The program holds no secret: the worker reads the request's token from
 * `launch.tokenFile`, which the caller writes where only the job's user can read it (mode 0600
 * in a 0700 directory), since schedulers copy job programs where every user of a node can.
 *
 * Throws a `SheepdogError` (`INVALID_INPUT`) when a launch field is unusable.
 *
 * @example
 * ```ts
 * const program = workerProgram({
 *   url: "http://laptop.example:8123",
 *   tokenFile: ".sheepdog/sheepdog_7_1a2b3c4d.token",
 *   request: 7,
 *   pickleProtocol: 4,
 *   retryWindowSeconds: 600,
 * });
 * ```
 */
export function workerProgram(launch: WorkerLaunch): string {
  const literal = pythonStringLiteral(asciiJson(checkedLaunch(launch)));
  const text = workerSource();
  const worker = text.endsWith("\n") ? text : `${text}\n`;
  return `${worker}\n\nif __name__ == "__main__":\n    sys.exit(main(json.loads(${literal})))\n`;
}
