import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import type { ExecOptions, ExecResult, Remote } from "@sheepdog/contracts";
import { PROBE_MARK } from "../internal/commands.js";

/** A fixture file's text. */
export function fixture(name: string): string {
  return readFileSync(new URL(name, import.meta.url), "utf8");
}

type Answer = Partial<ExecResult> | ((command: string) => Partial<ExecResult>);

/**
 * A `Remote` for unit tests that answers commands from real captured GridEngine output
 * (matched by a pattern) and records every command, upload and mkdir. The probe for the
 * programs behind Debian's wrapper (see internal/commands.ts) is kept apart, in `probes`, and
 * answered as a head node without that wrapper would, unless `probeAnswer` says otherwise.
 */
export class ScriptedRemote implements Remote {
  readonly name = "scripted";
  readonly commands: string[] = [];
  readonly probes: string[] = [];
  probeAnswer: Partial<ExecResult> = {};
  readonly uploads = new Map<string, { contents: string; mode: number | undefined }>();
  readonly directories: string[] = [];
  private readonly answers: [RegExp, Answer][] = [];

  /** Answers commands matching `pattern` (the latest matching rule wins). */
  on(pattern: RegExp, answer: Answer): this {
    this.answers.unshift([pattern, answer]);
    return this;
  }

  async exec(command: string, _options?: ExecOptions): Promise<ExecResult> {
    if (command.includes(PROBE_MARK)) {
      this.probes.push(command);
      return { stdout: "", stderr: "", code: 0, signal: null, ...this.probeAnswer };
    }
    this.commands.push(command);
    const rule = this.answers.find(([pattern]) => pattern.test(command));
    if (!rule)
      return { stdout: "", stderr: `sh: 1: ${command}: not found\n`, code: 127, signal: null };
    const answer = typeof rule[1] === "function" ? rule[1](command) : rule[1];
    return { stdout: "", stderr: "", code: 0, signal: null, ...answer };
  }

  async upload(path: string, contents: string | Uint8Array, mode?: number): Promise<void> {
    this.uploads.set(path, {
      contents: typeof contents === "string" ? contents : new TextDecoder().decode(contents),
      mode,
    });
  }

  async readFile(path: string): Promise<Uint8Array> {
    const file = this.uploads.get(path);
    if (!file) throw new Error(`no such file ${path}`);
    return new TextEncoder().encode(file.contents);
  }

  async mkdir(path: string): Promise<void> {
    this.directories.push(path);
  }

  async close(): Promise<void> {}
}

/**
 * A `Remote` whose commands run in a real `sh` in `home`, for commands whose meaning is the
 * shell's and its tools' (`find`, `grep`). Records every command, as {@link ScriptedRemote}.
 */
export class ShellRemote extends ScriptedRemote {
  constructor(readonly home: string) {
    super();
  }

  override async exec(command: string, options?: ExecOptions): Promise<ExecResult> {
    if (command.includes(PROBE_MARK)) return super.exec(command, options);
    this.commands.push(command);
    return new Promise((resolve) => {
      execFile("sh", ["-c", command], { cwd: this.home }, (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null;
        resolve({ stdout, stderr, code, signal: null });
      });
    });
  }
}
