import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./source.js";

const powerOfSuffix: Readonly<Record<string, number>> = { "": 0, k: 1, m: 2, g: 3, t: 4 };

/**
 * Reads a `mem_grab` size in bytes as the original Sheepdog did: a number with an optional
 * `K`, `M`, `G` or `T` in either case, every suffix a power of 1024 (`3k` = 3072,
 * `2g` = `2G` = 2 GiB). Unlike GridEngine's own rule for `h_vmem` (see `parseMemoryRequest`),
 * case does not matter. `null` when `text` is not such a size or is less than one byte.
 */
export function parseMemGrab(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)([kKmMgGtT]?)$/.exec(text);
  if (!match) return null;
  const power = powerOfSuffix[(match[2] ?? "").toLowerCase()] ?? 0;
  const bytes = Math.round(Number(match[1]) * 1024 ** power);
  return bytes >= 1 ? bytes : null;
}

/** Each `mem_grab=<size>` of an option's `-l` resource lists, in order. */
function memGrabValues(words: readonly string[]): string[] {
  const values: string[] = [];
  words.forEach((word, index) => {
    if (word !== "-l") return;
    for (const resource of (words[index + 1] ?? "").split(",")) {
      const match = /^mem_grab=(.*)$/.exec(resource.trim());
      if (match) values.push(match[1] ?? "");
    }
  });
  return values;
}

/** The bytes of each `mem_grab` request of one option, or `CONFIG_INVALID` naming it. */
function memGrabSizes(option: string, words: readonly string[]): number[] {
  return memGrabValues(words).map((value) => {
    const bytes = parseMemGrab(value);
    if (bytes !== null) return bytes;
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `GridEngine option ${JSON.stringify(option)} asks for mem_grab=${JSON.stringify(value)}, which is not a size, so no task could hold itself to it. Write a whole number of bytes, or a number with K, M, G or T in either case (powers of 1024, as the original Sheepdog read them: 2G = 2g = 2 GiB), as in "-l mem_grab=2G".`,
      { detail: { option } },
    );
  });
}

/**
 * Checks the `mem_grab` requests of one option's words (as qsub reads them): each must be a
 * size (see {@link parseMemGrab}), or the worker could not apply it. Throws `CONFIG_INVALID`
 * naming the option and how to write the size.
 */
export function checkMemGrab(option: string, words: readonly string[]): void {
  memGrabSizes(option, words);
}

/**
 * The memory limit that `-l mem_grab=<size>` asks each task to hold itself to, in bytes, or
 * `undefined` when no option asks for one. Sizes are the original Sheepdog's, every suffix a
 * power of 1024 (`2G` = `2g` = 2 GiB, `3k` = 3072); a size it cannot read is `CONFIG_INVALID`,
 * never "no limit". The last request wins; `mem_grab` may stand in a list
 * (`-l h_rt=1:0:0,mem_grab=1G`). Takes each option's words as qsub reads them.
 */
export function memGrabBytes(options: readonly (readonly string[])[]): number | undefined {
  let bytes: number | undefined;
  for (const words of options) {
    for (const size of memGrabSizes(words.join(" "), words)) bytes = size;
  }
  return bytes;
}
