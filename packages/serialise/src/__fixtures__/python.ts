import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** Debian's interpreter, as the brief asks (the `python3` on PATH may be another). */
export const PYTHON = "/usr/bin/python3";

const here = dirname(fileURLToPath(import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: replies are JSON of several shapes
type Reply = Record<string, any>;

/**
 * One long-lived Python process answering JSON-line requests (see oracle.py), so that a test
 * file makes one subprocess however many round trips it runs.
 */
export class PythonOracle {
  private readonly waiting: ((reply: Reply) => void)[] = [];
  private stderr = "";

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on("line", (line) => {
      this.waiting.shift()?.(JSON.parse(line) as Reply);
    });
    child.stderr.on("data", (d: Buffer) => {
      this.stderr += d.toString();
    });
  }

  static start(): PythonOracle {
    const child = spawn(PYTHON, [join(here, "oracle.py")], {
      env: { ...process.env, PYTHONPATH: here, PYTHONHASHSEED: "0", PYTHONDONTWRITEBYTECODE: "1" },
    });
    return new PythonOracle(child);
  }

  request(req: Reply): Promise<Reply> {
    return new Promise((resolve, reject) => {
      if (this.child.exitCode !== null) {
        reject(new Error(`python exited: ${this.stderr}`));
        return;
      }
      this.waiting.push((reply) => {
        if (typeof reply.error === "string") reject(new Error(`python: ${reply.error}`));
        else resolve(reply);
      });
      this.child.stdin.write(`${JSON.stringify(req)}\n`);
    });
  }

  /** Runs many requests in one round trip; per-item errors come back as { error }. */
  async batch(items: Reply[]): Promise<Reply[]> {
    const reply = await this.request({ op: "batch", items });
    return reply.results as Reply[];
  }

  close(): void {
    this.child.stdin.end();
  }
}

export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
export const unb64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "base64"));
