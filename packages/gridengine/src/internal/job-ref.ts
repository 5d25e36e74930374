import type { JobRef } from "@sheepdog/contracts";
import { checkJobRef } from "@sheepdog/contracts";
import { source } from "./source.js";

/**
 * Checks that `job` is one this GridEngine scheduler could have submitted (it may come from a
 * stored request, written by another process). Throws `INVALID_INPUT`.
 */
export function checkRef(job: JobRef): void {
  checkJobRef(job, { source, title: "GridEngine" });
}
