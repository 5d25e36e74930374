import type { JobRef } from "@sheepdog/contracts";
import { readOutputLines } from "@sheepdog/contracts";
import type { Commands } from "./commands.js";
import { checkRef } from "./job-ref.js";
import { source } from "./source.js";

/**
 * Every line of `job`'s task output (`<name>.o<job>[.<task>]` in its directory) that contains
 * `marker`, read over the remote with `find` and `grep -F`.
 */
export function outputLines(commands: Commands, job: JobRef, marker: string): Promise<string[]> {
  checkRef(job);
  return readOutputLines(commands.remote, job, marker, {
    timeoutMs: commands.settings.pollTimeoutMs,
    source,
  });
}
