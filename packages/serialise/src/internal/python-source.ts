/** What a Python module defines at its top level, as far as a light scan can tell. */
export interface TopLevel {
  /** Names of top-level `def` / `async def`, in order. */
  defs: string[];
  /** Other top-level bindings: classes, simple assignments, imports. */
  names: Set<string>;
}

const NAME = String.raw`[\p{L}\p{Nl}_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}]*`;
const DEF = new RegExp(String.raw`^(?:async[ \t]+)?def[ \t]+(${NAME})[ \t]*[(\[]`, "u");
const CLASS = new RegExp(String.raw`^class[ \t]+(${NAME})`, "u");
const ASSIGN = new RegExp(String.raw`^(${NAME})[ \t]*(?::[^=\n]*)?=(?!=)`, "u");
const IMPORT = /^import[ \t]+(.+)$/u;
const FROM_IMPORT = /^from[ \t]+\S+[ \t]+import[ \t]+\(?([^)#]+)/u;
const AS_NAME = new RegExp(String.raw`^(\S+?)(?:[ \t]+as[ \t]+(${NAME}))?$`, "u");

/**
 * Finds the logical lines that start at column 0 (outside strings, brackets and continuations)
 * and reads the definitions on them. Strings (triple-quoted ones spanning lines included),
 * comments, brackets and backslash continuations are tracked, so a `def` inside a docstring or
 * an indented block is not mistaken for a top-level one.
 */
export function scanTopLevel(text: string): TopLevel {
  const source = text.replace(/\r\n?/g, "\n");
  const starts: number[] = [];
  const n = source.length;
  let depth = 0;
  let atLineStart = true;
  let continued = false;
  let i = 0;
  while (i < n) {
    if (atLineStart) {
      if (depth === 0 && !continued) starts.push(i);
      atLineStart = false;
      continued = false;
    }
    const c = source[i] as string;
    if (c === "#") {
      while (i < n && source[i] !== "\n") i++;
    } else if (c === "\n") {
      atLineStart = true;
      i++;
    } else if (c === "\\" && source[i + 1] === "\n") {
      atLineStart = true;
      continued = true;
      i += 2;
    } else if (c === "'" || c === '"') {
      const triple = source.startsWith(c + c + c, i);
      i += triple ? 3 : 1;
      while (i < n) {
        const d = source[i];
        if (d === "\\") {
          i += 2;
        } else if (triple ? source.startsWith(c + c + c, i) : d === c) {
          i += triple ? 3 : 1;
          break;
        } else if (!triple && d === "\n") {
          break; // an unterminated string: stop at the end of the line
        } else {
          i++;
        }
      }
    } else {
      if (c === "(" || c === "[" || c === "{") depth++;
      else if ((c === ")" || c === "]" || c === "}") && depth > 0) depth--;
      i++;
    }
  }

  const defs: string[] = [];
  const names = new Set<string>();
  for (const start of starts) {
    const stop = source.indexOf("\n", start);
    const line = source.slice(start, stop < 0 ? n : stop);
    let m = DEF.exec(line);
    if (m !== null) {
      defs.push(m[1] as string);
      continue;
    }
    m = CLASS.exec(line) ?? ASSIGN.exec(line);
    if (m !== null) {
      names.add(m[1] as string);
      continue;
    }
    m = FROM_IMPORT.exec(line) ?? IMPORT.exec(line);
    if (m !== null) {
      for (const part of (m[1] as string).split(",")) {
        const a = AS_NAME.exec(part.trim());
        if (a === null) continue;
        names.add(a[2] ?? (a[1] as string).split(".")[0] ?? "");
      }
    }
  }
  return { defs, names };
}
