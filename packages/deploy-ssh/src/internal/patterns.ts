/** OpenSSH's glob: `*` matches any run of characters, `?` exactly one; nothing else is special. */
export function matchPattern(text: string, pattern: string): boolean {
  // Iterative wildcard matching with backtracking on the last `*` (linear-ish, no regex).
  let t = 0;
  let p = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === "?" || (c !== undefined && c !== "*" && c === text[t])) {
      t++;
      p++;
    } else if (c === "*") {
      star = p++;
      mark = t;
    } else if (star !== -1) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (pattern[p] === "*") p++;
  return p === pattern.length;
}

/**
 * Matches `text` against patterns, each optionally negated with `!`, as OpenSSH's
 * `match_pattern_list`: `false` when a negated pattern matches (which wins over everything),
 * `true` when a positive one matches, `undefined` when none does.
 */
export function matchPatterns(text: string, patterns: readonly string[]): boolean | undefined {
  let matched: boolean | undefined;
  for (const raw of patterns) {
    if (raw === "") continue;
    const negated = raw.startsWith("!");
    const pattern = negated ? raw.slice(1) : raw;
    if (matchPattern(text, pattern)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** {@link matchPatterns} over a comma-separated list (known_hosts host fields). */
export function matchPatternList(text: string, list: string): boolean | undefined {
  return matchPatterns(text, list.split(","));
}
