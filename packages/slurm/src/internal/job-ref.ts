import type { JobRef } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./source.js";

/** The job names `submit` accepts (`--job-name`), so a stored name is safe in a pattern. */
export const jobNamePattern = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function validPart(part: JobRef["parts"][number] | undefined, tasks: number): boolean {
  return (
    typeof part?.jobId === "string" &&
    /^\d+$/.test(part.jobId) &&
    Number.isSafeInteger(part.firstTask) &&
    Number.isSafeInteger(part.lastTask) &&
    part.firstTask >= 1 &&
    part.lastTask >= part.firstTask &&
    part.lastTask <= tasks
  );
}

/**
 * Checks that `job` is one this scheduler could have submitted (it may come from a stored
 * request, written by another process), so that no part of it can reach a command unchecked:
 * scheduler "slurm", numeric job ids, task ranges within 1..tasks, a job name of
 * `[A-Za-z0-9_.-]` and a directory. Throws `INVALID_INPUT`.
 */
export function checkRef(job: JobRef): void {
  const valid =
    typeof job === "object" &&
    job !== null &&
    job.scheduler === source &&
    Number.isSafeInteger(job.tasks) &&
    typeof job.name === "string" &&
    jobNamePattern.test(job.name) &&
    typeof job.directory === "string" &&
    !job.directory.includes("\u0000") &&
    Array.isArray(job.parts) &&
    job.parts.length > 0 &&
    job.parts.every((part) => validPart(part, job.tasks));
  if (!valid) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `${JSON.stringify(job)?.slice(0, 200)} is not a job this Slurm scheduler submitted (scheduler "slurm", numeric job ids, task ranges within 1..tasks, a job name of letters, digits and "_.-"). Pass the JobRef that submit() returned.`,
    );
  }
}
