import type { CommandSettings, Remote } from "@sheepdog/contracts";
import { SchedulerCommands } from "@sheepdog/contracts";
import { source } from "./source.js";

export type { CommandSettings } from "@sheepdog/contracts";
export { outputOf } from "@sheepdog/contracts";

/** Runs GridEngine's commands over a `Remote`, turning every failure into a `SheepdogError`. */
export class Commands extends SchedulerCommands {
  constructor(remote: Remote, settings: CommandSettings) {
    super(remote, settings, {
      source,
      title: "GridEngine",
      setupExample: ". $SGE_ROOT/default/common/settings.sh",
    });
  }
}
