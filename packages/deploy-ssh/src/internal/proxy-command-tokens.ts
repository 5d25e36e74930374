import { homedir } from "node:os";
import { SheepdogError, shellQuote } from "@sheepdog/contracts";
import { source } from "./source.js";
import type { TokenValues } from "./ssh-config.js";
import { tokenValue } from "./ssh-config.js";

/** Where `/bin/sh` stands at a point of a command line, as far as quoting goes. */
interface ShellPosition {
  quote: "none" | "single" | "double";
  /** The previous character is a backslash that escapes the next one. */
  escaped: boolean;
  /** The previous character is a `$` outside single quotes. */
  afterDollar: boolean;
  /**
   * A backquote, `$(`, `${`, `$[`, `$'` or `$"` has been seen: shell syntax nested in the line,
   * whose quoting this scan does not follow.
   */
  nested: boolean;
}

/** Moves `position` past the character `c` of the command line. */
function advance(position: ShellPosition, c: string): void {
  if (position.quote === "single") {
    if (c === "'") position.quote = "none";
    return;
  }
  if (position.escaped) {
    position.escaped = false;
    return;
  }
  if (position.afterDollar && "({['\"".includes(c)) position.nested = true;
  position.afterDollar = c === "$";
  if (c === "\\") position.escaped = true;
  else if (c === "`") position.nested = true;
  else if (c === '"') position.quote = position.quote === "double" ? "none" : "double";
  else if (c === "'" && position.quote === "none") position.quote = "single";
}

function cannotQuote(token: string, value: string): SheepdogError {
  return new SheepdogError(
    "SSH_CONFIG",
    source,
    `ProxyCommand puts ${token} (here ${JSON.stringify(value)}) after a backslash or "$", or inside a backquote, $(...) or \${...}, where Sheepdog cannot quote it for the shell. Write ${token} outside those, as a word of its own or inside plain '...' or "..." quotes.`,
  );
}

/**
 * `value` as text that the shell reads back as exactly `value`, at `position`: a word of only
 * letters, digits and `@%+=:,./_-` as it is (it means the same everywhere, as OpenSSH puts
 * it); anything else quoted by `shellQuote`, inside quotes by closing them before and opening
 * them again after (`"pre%hpost"` becomes `"pre"'x y'"post"`).
 */
function quoteAt(value: string, position: ShellPosition, token: string): string {
  const quoted = shellQuote(value);
  if (quoted === value) return value;
  if (position.escaped || position.afterDollar || position.nested) throw cannotQuote(token, value);
  if (position.quote === "single") return `'${quoted}'`;
  if (position.quote === "double") return `"${quoted}"`;
  return quoted;
}

/**
 * Expands the `%` tokens of a ProxyCommand (`%h %n %p %r %u %d %l %%`), each value quoted for
 * `/bin/sh` where it stands, so that no value, however written, becomes shell syntax. Host
 * and user names are checked before (names.ts); this is the second wall. A value that needs
 * quoting where the shell's quoting cannot be followed (after `\` or `$`, inside a backquote,
 * `$(...)` or `${...}`) is refused with `SSH_CONFIG`, as is an unknown token.
 */
export function expandProxyCommand(command: string, tokens: TokenValues, home = homedir()): string {
  const position: ShellPosition = {
    quote: "none",
    escaped: false,
    afterDollar: false,
    nested: false,
  };
  let expanded = "";
  for (let i = 0; i < command.length; i++) {
    const c = command.charAt(i);
    const letter = command.charAt(i + 1);
    if (c === "%" && letter !== "") {
      const value = tokenValue(letter, tokens, "ProxyCommand", home);
      expanded += quoteAt(value, position, `%${letter}`);
      // What was put in is whole: the quoting around it is as it was, nothing is escaped.
      position.escaped = false;
      position.afterDollar = false;
      i++;
    } else {
      expanded += c;
      advance(position, c);
    }
  }
  return expanded;
}
