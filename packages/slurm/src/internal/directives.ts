import { parseSize, SheepdogError } from "@sheepdog/contracts";
import { source } from "./source.js";

/**
 * Splits the text of one `#SBATCH` line into arguments as sbatch does (`_get_argument()` in
 * Slurm's sbatch/opt.c): blanks separate arguments, a backslash takes the next character as
 * it is, single or double quotes group characters (blanks too) and are removed, an unquoted
 * `#` ends the line. No shell is involved.
 *
 * `--comment="a b"` is `["--comment=a b"]`; `--mem=4G --time=10` is `["--mem=4G", "--time=10"]`.
 */
export function splitDirective(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  let escaped = false;
  for (const char of line) {
    if (escaped) {
      word = (word ?? "") + char;
      escaped = false;
    } else if (char === "\\") {
      escaped = true;
    } else if (quote !== undefined) {
      if (char === quote) quote = undefined;
      else word = (word ?? "") + char;
    } else if (char === '"' || char === "'") {
      quote = char;
      word ??= "";
    } else if (char === "#") {
      break;
    } else if (char === " " || char === "\t") {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? "") + char;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** Options Sheepdog sets itself, or that would break the job, with the reason. */
const managedOptions: Record<string, string> = {
  "--array": "Sheepdog sets the array from the number of tasks",
  "-a": "Sheepdog sets the array from the number of tasks",
  "--job-name": "Sheepdog names the job itself (one name per request, so files never collide)",
  "-J": "Sheepdog names the job itself (one name per request, so files never collide)",
  "--output": "Sheepdog reads each task's output file to recover results",
  "-o": "Sheepdog reads each task's output file to recover results",
  "--error": "Sheepdog keeps each task's errors beside its output",
  "-e": "Sheepdog keeps each task's errors beside its output",
  "--wrap": "the job must be Sheepdog's worker script",
  "--parsable": "Sheepdog reads sbatch's answer itself",
  "--wait": "sbatch would then wait for the whole job to end",
  "-W": "sbatch would then wait for the whole job to end",
  "--test-only": "nothing would be submitted",
};

/**
 * GridEngine's options (qsub) with no meaning, or another meaning, to sbatch, and what to
 * write for Slurm instead.
 */
const gridEngineOptions: Record<string, string> = {
  "-l": '--mem=4G or --time=1:00:00 (or resources: { memory: "4G", time: "1:00:00" })',
  "-pe": "--cpus-per-task=N (or resources: { cpus: N })",
  "-cwd": "--chdir=DIR (jobs start in the job directory already)",
  "-wd": "--chdir=DIR",
  "-S": 'the "shell" setting',
  "-V": "--export=ALL (Slurm's default)",
  "-j": "nothing: Slurm keeps stdout and stderr apart already",
  "-hold_jid": "--dependency=afterany:JOBID",
  "-tc": "--array's %N throttle, which Sheepdog does not set: ask for fewer tasks with chunkSize",
  "-P": "--account=NAME",
  "-now": "--immediate",
  "-notify": "--signal=...",
  "-binding": "--cpu-bind=...",
  "-soft": "nothing",
  "-hard": "nothing",
};

// Characters that end a line for sbatch or Python, or that no option has a use for.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is rejected
const forbidden = /[\u0000-\u0008\u000a-\u001f\u007f\u0085\u2028\u2029]/;

function refuse(option: string, message: string): SheepdogError {
  return new SheepdogError("CONFIG_INVALID", source, message, { detail: { option } });
}

/** The option name of an argument: `--mem` of `--mem=4G`, `-p` of `-p`. */
function optionName(word: string): string {
  return word.startsWith("--") ? (word.split("=", 1)[0] ?? word) : word;
}

/** Checks the characters of one option, before it is split into words. */
function checkCharacters(option: string): void {
  const shown = JSON.stringify(option);
  if (forbidden.test(option)) {
    throw refuse(
      option,
      `Slurm option ${shown} contains a line break or control character, which could start a second directive or a line of the job script. Give each option as its own single-line string.`,
    );
  }
  if (option.includes("#")) {
    throw refuse(
      option,
      `Slurm option ${shown} contains "#", where sbatch may end the directive (it reads an unquoted "#" as a comment). Remove the "#".`,
    );
  }
  let quote: string | undefined;
  let escaped = false;
  for (const char of option) {
    if (escaped) escaped = false;
    else if (char === "\\") escaped = true;
    else if (quote !== undefined) quote = char === quote ? undefined : quote;
    else if (char === '"' || char === "'") quote = char;
  }
  if (quote !== undefined || escaped) {
    throw refuse(
      option,
      `Slurm option ${shown} ${escaped ? "ends with a backslash" : "opens a quote and never closes it"}, so sbatch would read it differently from what it says. Close the quote, or remove it.`,
    );
  }
}

/**
 * Checks one Slurm option (`"--time=1:00:00"`, `"-p short"`) before it becomes an `#SBATCH`
 * line, and returns its arguments as sbatch will read them. Refuses, with `CONFIG_INVALID`
 * naming the option and the fix: line breaks and control characters, `#`, an unclosed quote,
 * text that is not an option, the options Sheepdog manages, and GridEngine's options (`-l`,
 * `-pe`, ...), naming Slurm's.
 */
export function checkOption(option: unknown): string[] {
  if (typeof option !== "string") {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `Every Slurm option must be a string, not ${JSON.stringify(option) ?? String(option)}.`,
    );
  }
  checkCharacters(option);
  const shown = JSON.stringify(option);
  const words = splitDirective(option);
  if (words.length === 0 || !words[0]?.startsWith("-")) {
    throw refuse(
      option,
      `Slurm option ${shown} is not an option: each one starts with "-", as in "--time=1:00:00".`,
    );
  }
  for (const word of words) {
    const name = optionName(word);
    const managed = Object.hasOwn(managedOptions, name) ? managedOptions[name] : undefined;
    if (managed) {
      throw refuse(
        option,
        `Slurm option ${shown} sets ${name}, which Sheepdog does not allow: ${managed}. Remove it.`,
      );
    }
    const instead = Object.hasOwn(gridEngineOptions, name) ? gridEngineOptions[name] : undefined;
    if (instead && word === words[0]) {
      throw refuse(
        option,
        `${shown} is a GridEngine (qsub) option, but this cluster runs Slurm. Put Slurm's sbatch options in slurmOpts; for this one write ${instead}.`,
      );
    }
  }
  checkMemory(option, words);
  return words;
}

/**
 * Checks every option of a job (see {@link checkOption}); returns each option's arguments as
 * sbatch reads them. Throws `CONFIG_INVALID` naming the first option it refuses.
 */
export function checkOptions(options: unknown): string[][] {
  if (!Array.isArray(options)) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `Slurm options must be an array of strings, one option per string (["--time=1:00:00"]), not ${JSON.stringify(options) ?? String(options)}.`,
    );
  }
  return options.map(checkOption);
}

/** Each `--mem` value of an option's arguments (`--mem=4G` or `--mem 4G`). */
function memoryValues(words: readonly string[]): string[] {
  const values: string[] = [];
  words.forEach((word, index) => {
    if (word.startsWith("--mem=")) values.push(word.slice("--mem=".length));
    else if (word === "--mem") values.push(words[index + 1] ?? "");
  });
  return values;
}

/**
 * Reads a Slurm memory size: a number of megabytes, or a number with K, M, G or T (powers of
 * 1024), as sbatch reads `--mem`. `0` (all the node's memory) and anything else: `undefined`.
 */
export function parseSlurmMemory(text: string): number | undefined {
  if (!/^\d+[KMGT]?$/i.test(text.trim())) return undefined;
  const plain = /^\d+$/.test(text.trim());
  return parseSize(plain ? `${text.trim()}M` : text);
}

function checkMemory(option: string, words: readonly string[]): void {
  for (const value of memoryValues(words)) {
    if (value.trim() !== "0" && parseSlurmMemory(value) === undefined) {
      throw refuse(
        option,
        `Slurm option ${JSON.stringify(option)} asks for --mem=${JSON.stringify(value)}, which is not a size. Write megabytes, or a whole number with K, M, G or T, as in "--mem=4G".`,
      );
    }
  }
}

/**
 * The memory limit that `--mem=<size>` asks each task to hold itself to, in bytes, or
 * `undefined` when no option asks for one (or asks for `0`, all of the node's). The last
 * request wins. Takes each option's arguments as sbatch reads them.
 */
export function memBytes(options: readonly (readonly string[])[]): number | undefined {
  let bytes: number | undefined;
  for (const words of options) {
    for (const value of memoryValues(words)) bytes = parseSlurmMemory(value) ?? bytes;
  }
  return bytes;
}
