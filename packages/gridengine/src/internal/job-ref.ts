import type { JobRef } from "@sheepdog/contracts";
import { checkJobRef, partTaskRuns } from "@sheepdog/contracts";
import { source } from "./source.js";

/**
 * Checks that `job` is one this GridEngine scheduler could have submitted (it may come from a
 * stored request, written by another process). Throws `INVALID_INPUT`.
 */
export function checkRef(job: JobRef): void {
  checkJobRef(job, { source, title: "GridEngine" });
}

/**
 * Tasks `tasks` of `job` as `qdel` names them: `60.5-6`, `60.8`. A part keeps the whole job's
 * task numbers (`-t 1001-2000`), so each part's own numbering is shifted back to them. Throws
 * `INVALID_INPUT` for a number outside the job.
 */
export function qdelTaskWords(job: JobRef, tasks: readonly number[]): string[] {
  const partsById = new Map(job.parts.map((part) => [part.jobId, part]));
  return partTaskRuns(job, tasks, { source }).flatMap(({ jobId, runs }) => {
    const shift = (partsById.get(jobId)?.firstTask ?? 1) - 1;
    return runs.map(({ first, last }) =>
      first === last ? `${jobId}.${first + shift}` : `${jobId}.${first + shift}-${last + shift}`,
    );
  });
}
