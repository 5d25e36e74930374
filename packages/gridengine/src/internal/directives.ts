import { SheepdogError } from "@sheepdog/contracts";
import { checkMemGrab } from "./mem-grab.js";
import { source } from "./source.js";

/**
 * Splits the text of one `#$` line into words exactly as qsub does (`string_list()` and
 * `sge_strip_quotes()` in GridEngine's source, checked on the test cluster): words are
 * separated by blanks, but once a word holds a quote (`"` or `'`), the rest of the line
 * belongs to that word (qsub's closing quote reopens at once); then every quote character is
 * removed. No backslash escapes, no shell.
 *
 * `-v A='a b'` is `["-v", "A=a b"]`; `-v A='a b' -v B=c` is `["-v", "A=a b -v B=c"]`.
 */
export function splitDirective(line: string): string[] {
  const words: string[] = [];
  const blank = (char: string | undefined) => char === " " || char === "\t" || char === "\n";
  let i = 0;
  while (i < line.length) {
    while (i < line.length && blank(line[i])) i++;
    if (i >= line.length) break;
    const start = i;
    const quote = line.slice(i).search(/["']|[ \t\n]/);
    if (quote >= 0 && !blank(line[i + quote])) {
      words.push(line.slice(start));
      break;
    }
    i = quote >= 0 ? i + quote : line.length;
    words.push(line.slice(start, i));
  }
  return words.map((word) => word.replace(/["']/g, ""));
}

/**
 * Options that Sheepdog sets itself, or that would break the job script, with the reason
 * given when a user passes them.
 */
const managedOptions: Record<string, string> = {
  "-t": "Sheepdog sets the task range from the number of tasks",
  "-N": "Sheepdog names the job itself (one name per request, so files never collide)",
  "-S": 'Sheepdog sets the interpreter from the "shell" setting',
  "-b": "the job must be a script (Sheepdog's worker), not a binary",
  "-C": "it would change the directive prefix Sheepdog's job script relies on",
  "-sync": "qsub would then wait for the whole job to end",
  "-@": "qsub would read more options from a file, which Sheepdog cannot check",
};

// Characters that end a line for qsub or Python, or that no option has a use for.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is rejected
const forbidden = /[\u0000-\u0008\u000a-\u001f\u007f\u0085\u2028\u2029]/;

function describeChar(char: string): string {
  if (char === "\n") return "a newline";
  if (char === "\r") return "a carriage return";
  if (char === "\u0000") return "a NUL character";
  return `the control character U+${char.codePointAt(0)?.toString(16).padStart(4, "0").toUpperCase()}`;
}

/** Slurm's common options, and GridEngine's words for them. */
const slurmOptions: Record<string, string> = {
  "--mem": '-l h_vmem=4G (or resources: { memory: "4G" })',
  "--mem-per-cpu": "-l h_vmem=4G",
  "--time": '-l h_rt=1:00:00 (or resources: { time: "1:00:00" })',
  "--partition": "-q QUEUE (or resources: { queue })",
  "--cpus-per-task": "-pe smp N (or resources: { cpus: N })",
  "--account": "-A ACCOUNT",
  "--chdir": "-wd DIR",
  "--export": "-V or -v NAME=VALUE",
  "--dependency": "-hold_jid JOB",
};

function gridEngineFor(option: string): string {
  const name = option.trim().split(/[= ]/, 1)[0] ?? "";
  return Object.hasOwn(slurmOptions, name)
    ? (slurmOptions[name] as string)
    : "the GridEngine option of the same meaning (see qsub(1))";
}

/** The kind of quote (`single` or `double`) that `option` leaves open, if any. */
function unclosedQuote(option: string): "single" | "double" | undefined {
  let open: string | undefined;
  for (const char of option) {
    if (open === undefined && (char === "'" || char === '"')) open = char;
    else if (char === open) open = undefined;
  }
  return open === undefined ? undefined : open === "'" ? "single" : "double";
}

/**
 * Checks one scheduler option (`"-l h_rt=0:10:0"`) before it becomes a `#$` line. Rejects,
 * with `CONFIG_INVALID` naming the option, anything that could start another line (newline,
 * carriage return, NUL, other control characters), a `#` (qsub ends the line there, even in
 * quotes), an unclosed quote, text that is not an option, and the options Sheepdog manages.
 * Returns the option's words as qsub will read them.
 */
export function checkOption(option: unknown): string[] {
  if (typeof option !== "string") {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `Every GridEngine option must be a string, not ${JSON.stringify(option) ?? String(option)}.`,
    );
  }
  const shown = JSON.stringify(option);
  const refuse = (message: string) =>
    new SheepdogError("CONFIG_INVALID", source, message, { detail: { option } });
  const bad = forbidden.exec(option);
  if (bad) {
    throw refuse(
      `GridEngine option ${shown} contains ${describeChar(bad[0])}, which could start a second directive or a line of the job script. Give each option as its own single-line string.`,
    );
  }
  if (option.includes("#")) {
    throw refuse(
      `GridEngine option ${shown} contains "#", where qsub would cut the directive short (it reads "#" as the start of a comment, even in quotes). Remove the "#".`,
    );
  }
  const unclosed = unclosedQuote(option);
  if (unclosed) {
    throw refuse(
      `GridEngine option ${shown} opens a ${unclosed} quote and never closes it, so qsub would read it differently from what it says. Close the quote, or remove it.`,
    );
  }
  if (option.trimStart().startsWith("--")) {
    throw refuse(
      `${shown} is a Slurm (sbatch) option, but this cluster runs GridEngine, whose options start with one "-". Put GridEngine's qsub options in geOpts; for this one write ${gridEngineFor(option)}.`,
    );
  }
  const words = splitDirective(option);
  const quoted = /["']/.exec(option);
  if (quoted && /[ \t]/.test(option.slice(option.search(/["'][^"']*$/) + 1))) {
    throw refuse(
      `GridEngine option ${shown} has text after a quoted value, which qsub would read as part of that value (after a quote, qsub takes the rest of the line as one word). Give each option as its own string, with any quoted value last.`,
    );
  }
  if (words.length === 0 || !words[0]?.startsWith("-")) {
    throw refuse(
      `GridEngine option ${shown} is not an option: each one starts with "-", as in "-l h_rt=0:10:0".`,
    );
  }
  for (const word of words) {
    const why = Object.hasOwn(managedOptions, word) ? managedOptions[word] : undefined;
    if (why) {
      throw refuse(
        `GridEngine option ${shown} sets ${word}, which Sheepdog does not allow: ${why}. Remove it.`,
      );
    }
  }
  return words;
}

/**
 * Checks every option of a job (see {@link checkOption}) and that each `-l mem_grab=<size>` is
 * a size; returns each option's words as qsub will read them. Throws `CONFIG_INVALID` naming
 * the first option it refuses and how to fix it.
 */
export function checkOptions(options: unknown): string[][] {
  if (!Array.isArray(options)) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `GridEngine options must be an array of strings, one option per string (["-l h_rt=0:10:0"]), not ${JSON.stringify(options) ?? String(options)}.`,
    );
  }
  return options.map((option) => {
    const words = checkOption(option);
    checkMemGrab(option, words);
    return words;
  });
}
