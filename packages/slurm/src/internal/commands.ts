import type { ExecResult, Remote, SheepdogErrorCode } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./source.js";

/** How Slurm's commands are run on the head node. */
export interface CommandSettings {
  /** Shell commands run before every Slurm command ("" for none). */
  setup: string;
  /** Deadline of each `squeue`, `sacct`, `scontrol`. */
  pollTimeoutMs: number;
  /** Deadline of each `sbatch` and `scancel`. */
  submitTimeoutMs: number;
}

/** A command's stderr and stdout as one line, for messages. */
export function outputOf(result: ExecResult): string {
  return `${result.stderr}\n${result.stdout}`
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .join(" ");
}

/** Runs Slurm's commands over a `Remote`, turning every failure into a `SheepdogError`. */
export class Commands {
  constructor(
    readonly remote: Remote,
    readonly settings: CommandSettings,
  ) {}

  /** Runs `command` after the setup commands; a failure to run it at all rejects with `code`. */
  async run(
    command: string,
    timeoutMs: number,
    code: SheepdogErrorCode,
    what: string,
  ): Promise<ExecResult> {
    try {
      return await this.remote.exec(`${this.settings.setup}${command}`, { timeoutMs });
    } catch (error) {
      throw SheepdogError.from(error, code, source, `Could not run ${what} on ${this.remote.name}`);
    }
  }

  /** A poll command (`squeue`, `sacct`, `scontrol`), rejecting with `SCHEDULER_FAILED`. */
  poll(command: string, what: string): Promise<ExecResult> {
    return this.run(command, this.settings.pollTimeoutMs, "SCHEDULER_FAILED", what);
  }

  /** The error for a Slurm command the head node does not have (exit code 127). */
  notFound(result: ExecResult, command: string, code: SheepdogErrorCode): SheepdogError {
    return new SheepdogError(
      code,
      source,
      `${command} was not found on ${this.remote.name} (${outputOf(result) || "exit code 127"}). Make Slurm's commands available to non-interactive logins there, or pass the "setup" option (e.g. "module load slurm").`,
    );
  }
}
