import { SheepdogError } from "@sheepdog/contracts";
import { parseMemoryRequest } from "./qacct.js";
import { source } from "./source.js";

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

/**
 * Checks the `mem_grab` requests of one option's words (as qsub reads them): each must be a
 * GridEngine size, or the worker could not apply it. Throws `CONFIG_INVALID` naming the option.
 */
export function checkMemGrab(option: string, words: readonly string[]): void {
  for (const value of memGrabValues(words)) {
    if (parseMemoryRequest(value) === null) {
      throw new SheepdogError(
        "CONFIG_INVALID",
        source,
        `GridEngine option ${JSON.stringify(option)} asks for mem_grab=${JSON.stringify(value)}, which is not a size. Write a number with an optional K, M or G (binary: 2G = 2 GiB) or k, m or g (decimal: 2g = 2e9 bytes), as in "-l mem_grab=2G".`,
        { detail: { option } },
      );
    }
  }
}

/**
 * The memory limit that `-l mem_grab=<size>` asks each task to hold itself to, in bytes, or
 * `undefined` when no option asks for one. Sizes are GridEngine's: `2G` = 2 GiB, `2g` = 2e9
 * bytes. The last request wins; `mem_grab` may stand in a list (`-l h_rt=1:0:0,mem_grab=1G`).
 * Takes each option's words as qsub reads them.
 */
export function memGrabBytes(options: readonly (readonly string[])[]): number | undefined {
  let bytes: number | undefined;
  for (const words of options) {
    for (const value of memGrabValues(words)) bytes = parseMemoryRequest(value) ?? bytes;
  }
  return bytes;
}
