/**
 * Quotes a word for a POSIX shell, as Python's `shlex.quote` does: a word of only letters,
 * digits and `@%+=:,./_-` stays bare, anything else goes in single quotes (`'it'\''s'`),
 * and the empty word becomes `''`.
 *
 * @example
 * ```ts
 * `cd -- ${shellQuote(directory)} && qsub -terse ${shellQuote(file)}`;
 * shellQuote("fear"); // fear
 * shellQuote("my dir"); // 'my dir'
 * ```
 */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9@%+=:,./_-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** Lower case without `_` and `-`, so that `ge_opts`, `ge-opts` and `geOpts` meet. */
function normalise(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, "");
}

/** The Levenshtein distance between two strings. */
function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = Math.min(
        above + 1,
        (row[j - 1] ?? 0) + 1,
        diagonal + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

/**
 * The candidate that `input` was probably meant to be, for a "Did you mean ...?" hint, or
 * `undefined` when none is close. Case, `_` and `-` are ignored; `aliases` maps other words
 * for a candidate (an old option name, the original's spelling) to it. Otherwise the nearest
 * candidate by edit distance wins if it is at most 3 edits away and no more than half the
 * longer word's length; among equally near ones the first.
 *
 * @example
 * ```ts
 * didYouMean("sshPrt", ["sshPort", "sshUser"]); // "sshPort"
 * didYouMean("dbfile", ["database"], { dbfile: "database" }); // "database"
 * didYouMean("colour", ["host", "port"]); // undefined
 * ```
 */
export function didYouMean(
  input: string,
  candidates: Iterable<string>,
  aliases: Readonly<Record<string, string>> = {},
): string | undefined {
  const wanted = normalise(input);
  for (const [alias, candidate] of Object.entries(aliases)) {
    if (alias === input || normalise(alias) === wanted) return candidate;
  }
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const name = normalise(candidate);
    const distance = editDistance(wanted, name);
    const limit = Math.min(3, Math.floor(Math.max(wanted.length, name.length) / 2));
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}
