import type { JobRef } from "@sheepdog/contracts";
import { checkJobRef, partTaskRuns, shellQuote } from "@sheepdog/contracts";
import { source } from "./source.js";

/**
 * Checks that `job` is one this Slurm scheduler could have submitted (it may come from a
 * stored request, written by another process). Throws `INVALID_INPUT`.
 */
export function checkRef(job: JobRef): void {
  checkJobRef(job, { source, title: "Slurm" });
}

/**
 * Tasks `tasks` of `job` as `scancel` names them, one word per part, quoted for the shell:
 * `'2253_[5-6,8]'`. Each part numbers its array tasks from 1 (`--array=1-<size>`). Throws
 * `INVALID_INPUT` for a number outside the job.
 */
export function scancelTaskWords(job: JobRef, tasks: readonly number[]): string[] {
  return partTaskRuns(job, tasks, { source }).map(({ jobId, runs }) => {
    const ranges = runs.map(({ first, last }) =>
      first === last ? `${first}` : `${first}-${last}`,
    );
    return shellQuote(`${jobId}_[${ranges.join(",")}]`);
  });
}
