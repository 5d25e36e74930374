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

/**
 * Finds the pid line in a command's stderr as it arrives. It comes first, or after whatever
 * the login shell's startup files printed: only the first 64 KiB are searched.
 */
export class PidProbe {
  private seen: Buffer | undefined = Buffer.alloc(0);
  /** The shell's pid, once found. */
  pid: number | undefined;
  /** The pid line as it appeared (`sheepdog-pid 123\n`), once found, for {@link withoutPidLine}. */
  line: string | undefined;

  /** Takes the next chunk of stderr. */
  feed(data: Buffer): void {
    if (this.seen === undefined) return;
    this.seen = Buffer.concat([this.seen, data]);
    const match = pidPattern.exec(this.seen.toString("latin1"));
    if (match) {
      this.pid = Number(match[2]);
      this.line = `sheepdog-pid ${match[2]}\n`;
      this.seen = undefined;
    } else if (this.seen.length > 64 * 1024) {
      this.seen = undefined;
    }
  }
}
