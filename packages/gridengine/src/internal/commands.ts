import type { CommandSettings, ExecResult, Remote, SheepdogErrorCode } from "@sheepdog/contracts";
import { SchedulerCommands, shellQuote } from "@sheepdog/contracts";
import { source } from "./source.js";

export type { CommandSettings } from "@sheepdog/contracts";
export { outputOf } from "@sheepdog/contracts";

/** The first line of {@link PROGRAMS_PROBE}, by which a test's remote can tell it apart. */
export const PROBE_MARK = "# sheepdog: where are GridEngine's programs?";

/** The GridEngine programs Sheepdog runs. */
const PROGRAMS = ["qstat", "qsub", "qdel", "qacct", "qconf"] as const;

/**
 * Prints where Debian's GridEngine wrapper would run the programs and with which SGE_ROOT,
 * SGE_CELL and SGE_ARCH (its own rules: the login's variables, then /etc/default/gridengine,
 * then its defaults), or nothing when `qstat` is not that wrapper.
 */
const PROGRAMS_PROBE = `${PROBE_MARK}
w=$(command -v qstat) || exit 0
case $(readlink -f -- "$w") in */gridengine-wrapper) ;; *) exit 0 ;; esac
[ -x /usr/lib/gridengine/qstat ] || exit 0
r=$SGE_ROOT c=$SGE_CELL a=$SGE_ARCH
if [ -r /etc/default/gridengine ]; then . /etc/default/gridengine; fi
r=\${r:-\${SGE_ROOT:-/var/lib/gridengine}} c=\${c:-\${SGE_CELL:-default}}
a=\${a:-\${SGE_ARCH:-$(/usr/share/gridengine/util/arch)}} || exit 0
printf 'direct\\n%s\\n%s\\n%s\\n' "$r" "$c" "$a"`;

/**
 * The shell text that runs GridEngine's programs directly, from the probe's answer, or "" to
 * run them as the login finds them.
 */
export function directPrograms(probe: ExecResult): string {
  const [mark, root, cell, arch] = probe.stdout.split("\n");
  if (probe.code !== 0 || mark !== "direct" || !root || !cell || !arch) return "";
  const variables = `export SGE_ROOT=${shellQuote(root)} SGE_CELL=${shellQuote(cell)} SGE_ARCH=${shellQuote(arch)}`;
  const functions = PROGRAMS.map((name) => `${name}() { /usr/lib/gridengine/${name} "$@"; }`);
  return `${[variables, ...functions].join("\n")}\n`;
}

/**
 * Runs GridEngine's commands over a `Remote`, turning every failure into a `SheepdogError`.
 *
 * Debian's packages run each GridEngine program through a shell script (`gridengine-wrapper`)
 * that works out SGE_ROOT, SGE_CELL and SGE_ARCH anew every time: on the test cluster's head
 * node a `qstat` took 0.22 to 0.24 s and 0.28 s of CPU that way, against 0.01 s for the program
 * itself, and a map runs one every few seconds. The first command asks once what the wrapper
 * would set; the commands then run the programs directly with it.
 */
export class Commands extends SchedulerCommands {
  #direct: Promise<string> | undefined;

  constructor(remote: Remote, settings: CommandSettings) {
    super(remote, settings, {
      source,
      title: "GridEngine",
      setupExample: ". $SGE_ROOT/default/common/settings.sh",
    });
  }

  override async run(
    command: string,
    timeoutMs: number,
    code: SheepdogErrorCode,
    what: string,
  ): Promise<ExecResult> {
    this.#direct ??= this.#findPrograms();
    return super.run(`${await this.#direct}${command}`, timeoutMs, code, what);
  }

  /** The prefix of {@link directPrograms}; "" when it cannot be told (any failure). */
  async #findPrograms(): Promise<string> {
    try {
      const probe = await super.run(
        PROGRAMS_PROBE,
        this.settings.pollTimeoutMs,
        "SCHEDULER_FAILED",
        "a probe",
      );
      return directPrograms(probe);
    } catch {
      return "";
    }
  }
}
