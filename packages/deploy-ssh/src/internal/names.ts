import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./source.js";

/*
 * Host and user names reach a ProxyCommand's shell through %h, %n and %r. OpenSSH 9.6
 * (CVE-2023-51385) refuses names with shell metacharacters, whitespace or control characters,
 * and names that start with "-". Sheepdog goes further and accepts only the characters such
 * names are made of, wherever the name comes from (options, ~/.ssh/config, a ProxyJump list).
 */

/** A host name, a ~/.ssh/config alias or an IPv4 address. */
const hostNamePattern = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
/** An IPv6 address (at least one ":"), with an optional zone such as `%eth0`. */
const ipv6Pattern = /^[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(?:%[A-Za-z0-9._-]+)?$/;
/** A login name: letters, digits, `.`, `_`, `-`, and `@` (`user@REALM`), not first. */
const userNamePattern = /^[A-Za-z0-9_][A-Za-z0-9._@-]*$/;

/** Where a name came from, for the message: the option or config line, and how to fix it. */
export interface NameOrigin {
  /** `host`, `sshUser`, `HostName`, `User`, `ProxyJump`. */
  option: string;
  /** Where the value was read, such as `/home/me/.ssh/config line 3`; none for an option. */
  where?: string;
  /** The sentence that says how to fix it. */
  fix: string;
}

/** A bracketed IPv6 address without its brackets; any other host as it is. */
export function unbracketed(host: string): string {
  const inner = /^\[(.*)\]$/.exec(host)?.[1];
  return inner !== undefined && ipv6Pattern.test(inner) ? inner : host;
}

/** `a control character (U+0007)`, `whitespace`, or the character in quotes. */
function describeCharacter(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  if (code < 0x20 || code === 0x7f) {
    return `a control character (U+${code.toString(16).toUpperCase().padStart(4, "0")})`;
  }
  if (/\s/.test(c)) return "whitespace";
  return `"${c}"`;
}

/** What `pattern` asks of a name, and which characters it may hold at all. */
interface NameShape {
  pattern: RegExp;
  allowed: RegExp;
  /** What is wrong when every character is allowed but the pattern still fails. */
  otherwise: string;
}

/** What is wrong with `value`, or undefined when it has the shape. */
function problemOf(value: string, shape: NameShape): string | undefined {
  if (shape.pattern.test(value)) return undefined;
  if (value === "") return "is empty";
  if (value.startsWith("-")) return 'starts with "-", which a command would read as an option';
  const bad = [...value].find((c) => !shape.allowed.test(c));
  if (bad !== undefined) return `contains ${describeCharacter(bad)}`;
  return shape.otherwise;
}

const hostShape: NameShape = {
  pattern: hostNamePattern,
  allowed: /[A-Za-z0-9._\-:%[\]]/,
  otherwise: "is neither a name nor an IPv4 or IPv6 address",
};

const userShape: NameShape = {
  pattern: userNamePattern,
  allowed: /[A-Za-z0-9._@-]/,
  otherwise: 'does not start with a letter, a digit or "_"',
};

/** Why `host` is not a host name, an IPv4 address or an IPv6 address; undefined when it is. */
export function hostNameProblem(host: string): string | undefined {
  const bare = unbracketed(host);
  if (ipv6Pattern.test(bare)) return undefined;
  return problemOf(bare, hostShape);
}

/** Why `user` is not a login name; undefined when it is. */
export function userNameProblem(user: string): string | undefined {
  return problemOf(user, userShape);
}

function refusal(kind: string, value: string, problem: string, origin: NameOrigin): SheepdogError {
  const where = origin.where ? ` (${origin.where})` : "";
  return new SheepdogError(
    "CONFIG_INVALID",
    source,
    `${origin.option} ${JSON.stringify(value)}${where} is not a ${kind}: it ${problem}. ${origin.fix}`,
  );
}

/** What a valid host is, for the fix sentences ("use ..."). */
export const hostNameRule =
  'a host name of letters, digits, ".", "-" and "_" that starts with a letter, a digit or "_", an IPv4 address, or an IPv6 address (plain or in brackets)';

/** What a valid user is, for the fix sentences ("use ..."). */
export const userNameRule =
  'a user name of letters, digits, ".", "-", "_" and "@" that starts with a letter, a digit or "_"';

/** Throws `CONFIG_INVALID` naming the origin unless `host` is a host name or an address. */
export function checkHostName(host: string, origin: NameOrigin): void {
  const problem = hostNameProblem(host);
  if (problem !== undefined) throw refusal("host name", host, problem, origin);
}

/** Throws `CONFIG_INVALID` naming the origin unless `user` is a login name. */
export function checkUserName(user: string, origin: NameOrigin): void {
  const problem = userNameProblem(user);
  if (problem !== undefined) throw refusal("user name", user, problem, origin);
}
