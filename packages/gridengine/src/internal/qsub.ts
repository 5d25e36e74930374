/**
 * The job number in qsub's answer: `-terse` prints `123` or `123.1-4:1`; without it,
 * `Your job-array 123.1-4:1 ("name") has been submitted` or `Your job 123 ("name") ...`.
 */
export function parseQsubJobId(stdout: string): string | undefined {
  for (const line of stdout.split("\n")) {
    const terse = /^\s*(\d+)(?:\.\d+-\d+:\d+)?\s*$/.exec(line);
    if (terse) return terse[1];
    const verbose = /^Your job(?:-array)? (\d+)[. ]/.exec(line.trim());
    if (verbose) return verbose[1];
  }
  return undefined;
}

/**
 * `max_aj_tasks` from `qconf -sconf`: the most tasks one array job may have (`Infinity` when
 * 0, which switches the limit off), or `undefined` when the text does not say.
 */
export function parseMaxArrayTasks(sconf: string): number | undefined {
  const match = /^max_aj_tasks\s+(\d+)\s*$/m.exec(sconf);
  if (!match) return undefined;
  const value = Number(match[1]);
  return value === 0 ? Number.POSITIVE_INFINITY : value;
}

/**
 * The lines of qdel's answer that report a real failure: not "has deleted", "has registered
 * ... for deletion", "is already in deletion", "does not exist" (a job or task that ended) or
 * "task id range ... comprises no tasks" (a range of tasks that all ended).
 */
export function qdelFailures(output: string): string[] {
  return output
    .split("\n")
    .map((line) => line.trim())
    .filter(
      (line) =>
        line !== "" &&
        !/has (?:deleted|registered)|already in deletion|does not exist|has been deleted|comprises no tasks/.test(
          line,
        ),
    );
}
