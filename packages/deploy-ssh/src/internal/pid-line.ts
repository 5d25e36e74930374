/** The first line of every command: it tells the shell's pid on stderr. */
export const pidLine = "printf 'sheepdog-pid %s\\n' $$ >&2";
export const pidPattern = /(^|\n)sheepdog-pid (\d+)\n/;

/** Removes the first pid line (at the start or after a newline) from stderr. */
export function withoutPidLine(text: string, line: string | undefined): string {
  if (line === undefined) return text;
  if (text.startsWith(line)) return text.slice(line.length);
  const at = text.indexOf(`\n${line}`);
  return at < 0 ? text : text.slice(0, at + 1) + text.slice(at + 1 + line.length);
}
