import { spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asNobody, canSwitchUsers } from "@sheepdog/testcluster";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const cli = join(import.meta.dirname, "../dist/cli.js");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `sheepdog` binary as a user would, in `cwd`. */
function sheepdog(
  args: string[],
  options: {
    cwd: string;
    stdin?: string;
    env?: Record<string, string>;
    signalAfter?: (out: string) => boolean;
  },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: options.cwd,
      env: { ...process.env, SHEEPDOG_HOST: "", SHEEPDOG_DBFILE: "", ...options.env },
    });
    let stdout = "";
    let stderr = "";
    let signalled = false;
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
      if (!signalled && options.signalAfter?.(stderr)) {
        signalled = true;
        // Let the tasks start before the interrupt.
        setTimeout(() => child.kill("SIGINT"), 1500);
      }
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? "");
  });
}

describe("the sheepdog command on the local scheduler", () => {
  let cwd: string;
  beforeAll(() => {
    cwd = mkdtempSync(join(tmpdir(), "sheepdog-cli-"));
    writeFileSync(
      join(cwd, "model.py"),
      [
        "import math",
        "",
        "def add(a, b):",
        "    return a + b",
        "",
        "def inverse(x):",
        "    return 1 / x",
        "",
        "def nap(seconds):",
        "    import time",
        "    time.sleep(seconds)",
        "    return seconds",
        "",
        "def kinds(x):",
        "    return [x, float('nan'), 2 ** 70, b'hi', {1, 2}, {1: 'a'}, math.pi]",
        "",
        "def doubled(depth):",
        "    a = []",
        "    for _ in range(depth):",
        "        a = [a, a]",
        "    return a",
        "",
        "def big(n):",
        "    return 'x' * n",
        "",
        "def chatty(x):",
        "    print('working on', x)",
        "    return x",
        "",
      ].join("\n"),
    );
    writeFileSync(join(cwd, "args.jsonl"), "[1, 2]\n[3, 4]\n\n[10, 20]\n");
    writeFileSync(join(cwd, "args.json"), '[["a", "b"], ["c", "d"]]');
  });
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  it("logs: what each task printed, all of them or one, as text or JSON lines", async () => {
    const dbfile = "logs.sqlite";
    const mapped = await sheepdog(
      ["map", "model.py:chatty", "--args", "-", "--host", "local", "--dbfile", dbfile],
      { cwd, stdin: "[5]\n[6]\n" },
    );
    expect(mapped.stdout).toBe("5\n6\n");
    const id = /request (\d+):/.exec(mapped.stderr)?.[1] as string;
    const all = await sheepdog(["logs", id, "--dbfile", dbfile], { cwd });
    expect(all.stdout).toBe("--- task 0 [5]\nworking on 5\n--- task 1 [6]\nworking on 6\n");
    const one = await sheepdog(["logs", id, "1", "--json", "--dbfile", dbfile], { cwd });
    expect(JSON.parse(one.stdout)).toEqual({ index: 1, args: [6], log: "working on 6\n" });
    const wrong = await sheepdog(["logs", id, "x", "--dbfile", dbfile], { cwd });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("takes a task's index");
  }, 60_000);

  it("maps a function over JSON lines and prints results as JSON lines", async () => {
    const run = await sheepdog(["map", "model.py:add", "--args", "args.jsonl", "--host", "local"], {
      cwd,
    });
    expect(run.stderr).toMatch(/request 1: 3\/3 done \(0 failed\)/);
    expect(run.stdout).toBe("3\n7\n30\n");
    expect(run.code).toBe(0);
  });

  it("reads a JSON file or standard input, and writes --out", async () => {
    const fromFile = await sheepdog(
      ["map", "model.py:add", "--args", "args.json", "--host", "local", "--out", "out.jsonl"],
      { cwd },
    );
    expect(fromFile.code).toBe(0);
    expect(readFileSync(join(cwd, "out.jsonl"), "utf8")).toBe('"ab"\n"cd"\n');
    const fromStdin = await sheepdog(["map", "model.py:add", "--args", "-", "--host", "local"], {
      cwd,
      stdin: "[[1, 1], [2, 2]]",
    });
    expect(fromStdin.stdout).toBe("2\n4\n");
  });

  it("spells out values JSON has no word for", async () => {
    const run = await sheepdog(["map", "model.py:kinds", "--args", "-", "--host", "local"], {
      cwd,
      stdin: "[1]\n",
    });
    expect(JSON.parse(run.stdout)).toEqual([
      1,
      { $float: "nan" },
      { $int: "1180591620717411303424" },
      { $bytes: "aGk=" },
      { $set: [1, 2] },
      { $dict: [[1, "a"]] },
      Math.PI,
    ]);
  });

  it("exits 1 when tasks fail, and errors shows the tracebacks", async () => {
    const run = await sheepdog(["map", "model.py:inverse", "--args", "-", "--host", "local"], {
      cwd,
      stdin: "[1]\n[0]\n[4]\n",
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("1\nnull\n0.25\n");
    const id = /sheepdog errors (\d+)/.exec(run.stderr)?.[1];
    expect(id).toBeDefined();
    const errors = await sheepdog(["errors", String(id)], { cwd });
    expect(errors.code).toBe(1);
    expect(errors.stdout).toMatch(
      /^--- \[0\]\nTraceback[\s\S]*ZeroDivisionError: division by zero\n$/,
    );

    const results = await sheepdog(["results", String(id), "--json"], { cwd });
    expect(results.code).toBe(1);
    expect(results.stderr).toContain(
      `1 of 3 tasks failed. See the tracebacks with "sheepdog errors ${id}`,
    );
    expect(
      results.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line)),
    ).toEqual([
      { index: 0, args: [1], result: 1 },
      { index: 1, args: [0], result: null },
      { index: 2, args: [4], result: 0.25 },
    ]);
  });

  it("with --order completion, writes each result with its index as it arrives", async () => {
    const run = await sheepdog(
      ["map", "model.py:inverse", "--args", "-", "--host", "local", "--order", "completion"],
      { cwd, stdin: "[1]\n[0]\n[4]\n" },
    );
    expect(run.code).toBe(1);
    const lines = run.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { index: number; result: unknown; error?: string });
    expect(lines.map((line) => line.index).sort()).toEqual([0, 1, 2]);
    const byIndex = new Map(lines.map((line) => [line.index, line]));
    expect(byIndex.get(0)).toEqual({ index: 0, result: 1 });
    expect(byIndex.get(2)).toEqual({ index: 2, result: 0.25 });
    expect(byIndex.get(1)).toMatchObject({ index: 1, result: null });
    expect(byIndex.get(1)?.error).toMatch(/ZeroDivisionError: division by zero/);
    expect(run.stderr).toMatch(/See the tracebacks with "sheepdog errors \d+/);
    const wrong = await sheepdog(
      ["map", "model.py:add", "--args", "-", "--host", "local", "--order", "random"],
      { cwd, stdin: "[1, 2]\n" },
    );
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('--order must be "arguments" or "completion", not "random".');
  });

  it("prints a value that holds the same list twice at each of 40 levels as its 40 lists", async () => {
    const started = Date.now();
    const run = await sheepdog(["map", "model.py:doubled", "--args", "-", "--host", "local"], {
      cwd,
      stdin: "[40]\n[1]\n",
    });
    expect(run.code).toBe(0);
    const [deep, shallow] = run.stdout.trim().split("\n");
    expect(deep?.length).toBeLessThan(2000);
    expect(deep?.match(/"\$id"/g)).toHaveLength(40);
    expect(deep?.match(/"\$ref"/g)).toHaveLength(40);
    // Depth 1: one empty list held twice.
    expect(JSON.parse(shallow ?? "")).toEqual([{ $id: 1, $value: [] }, { $ref: 1 }]);
    const id = /request (\d+):/.exec(run.stderr)?.[1] ?? "";
    const results = await sheepdog(["results", id], { cwd });
    expect(results.code).toBe(0);
    expect(results.stdout.split("\n")[0]).toBe(`[40] -> ${deep}`);
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);

  it("ends quietly when the reader of its output stops early", async () => {
    const run = await sheepdog(["map", "model.py:big", "--args", "-", "--host", "local"], {
      cwd,
      stdin: "[300000]\n[300000]\n[300000]\n",
      env: { SHEEPDOG_DBFILE: "big.sqlite" },
    });
    expect(run.code).toBe(0);
    const id = /request (\d+):/.exec(run.stderr)?.[1] ?? "";
    // head reads 100 bytes of the 900 kB and closes the pipe: the rest cannot be written.
    const piped = await new Promise<Run>((resolve, reject) => {
      const command = `"${process.execPath}" "${cli}" results ${id} --dbfile big.sqlite | head -c 100 >/dev/null; echo "exit $\{PIPESTATUS[0]}" >&2`;
      const child = spawn("bash", ["-c", command], {
        cwd,
        env: { ...process.env, SHEEPDOG_DBFILE: "" },
      });
      let stderr = "";
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
      });
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout: "", stderr }));
    });
    expect(piped.stderr).toBe("exit 0\n");
  }, 60_000);

  it("looks nothing up in a dbfile that does not exist, and creates none", async () => {
    for (const args of [
      ["requests", "--dbfile", "missing.sqlite"],
      ["results", "1", "--dbfile", "missing.sqlite"],
      ["errors", "1", "--dbfile", "missing.sqlite"],
      ["status", "1", "--dbfile", "missing.sqlite"],
    ]) {
      const run = await sheepdog(args, { cwd });
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).toContain(
        `There is no dbfile ${join(cwd, "missing.sqlite")}, so it holds no requests (it was not created). Run a map first, or check the dbfile (--dbfile, SHEEPDOG_DBFILE).`,
      );
    }
    expect(existsSync(join(cwd, "missing.sqlite"))).toBe(false);
  });

  it.skipIf(!canSwitchUsers)(
    "reads a dbfile that the user cannot write (as nobody: runs as root only)",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "sheepdog-cli-readonly-"));
      try {
        const dbfile = join(dir, "sheepdog.sqlite");
        const run = await sheepdog(
          ["map", "model.py:add", "--args", "-", "--host", "local", "--dbfile", dbfile],
          { cwd, stdin: "[1, 2]\n" },
        );
        expect(run.code).toBe(0);
        // nobody owns the directory and the file, and the file is 0400: read, never written.
        chmodSync(dir, 0o755);
        chownSync(dir, 65534, 65534);
        chownSync(dbfile, 65534, 65534);
        chmodSync(dbfile, 0o400);
        const results = await asNobody(process.execPath, [cli, "results", "1", "--dbfile", dbfile]);
        expect(results).toEqual({
          status: 0,
          stdout: "[1, 2] -> 3\n".replace(", ", ","),
          stderr: "",
        });
        const requests = await asNobody(process.execPath, [cli, "requests", "--dbfile", dbfile]);
        expect(requests.status).toBe(0);
        expect(requests.stdout).toMatch(/\n1\s+\S+ \S+\s+1\s+1\s+0\s+done\n$/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );

  it("lists requests and shows a request's status", async () => {
    const run = await sheepdog(["requests"], { cwd });
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^id\s+created\s+tasks\s+results\s+errors\s+state$/);
    expect(lines[1]).toMatch(/^1\s+\S+ \S+\s+3\s+3\s+0\s+done$/);
    const status = await sheepdog(["status", "1"], { cwd });
    expect(status.stdout.trim()).toMatch(
      /^request 1: 3\/3 done, 3 results, 0 errors\njob \S+ \(local\), 3 array tasks$/,
    );
  });

  it("answers mistakes with exit code 2 and the fix", async () => {
    const cases: [string[], RegExp][] = [
      [["map", "model.py:add", "--args", "args.jsonl"], /needs "host"/],
      [
        ["map", "model.py:add", "--args", "args.jsonl", "--ge_opts", "x"],
        /Did you mean --ge-opt\?/,
      ],
      [
        ["map", "model.py", "--args", "args.jsonl", "--host", "local"],
        /needs <file\.py>:<function>/,
      ],
      [["map", "model.py:nope", "--args", "args.jsonl", "--host", "local"], /nope/],
      [["map", "model.py:add", "--host", "local"], /needs --args/],
      [["map", "model.py:add", "--args", "missing.json", "--host", "local"], /Cannot read --args/],
      [["status", "x"], /needs a request id/],
      [["frobnicate"], /Unknown command "frobnicate"/],
      [
        ["map", "model.py:add", "--args", "args.jsonl", "--host", "local", "--ssh-port", "abc"],
        /--ssh-port takes a whole number/,
      ],
    ];
    for (const [args, message] of cases) {
      const run = await sheepdog(args, { cwd });
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).toMatch(message);
    }
    const bad = await sheepdog(["map", "model.py:add", "--args", "-", "--host", "local"], {
      cwd,
      stdin: "[1]\n2\n",
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Line 2 of - must be an array of positional arguments");
  });

  it("takes configuration from flags, then SHEEPDOG_*, then sheepdog.config.json, and says which", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sheepdog-cli-config-"));
    try {
      writeFileSync(
        join(dir, "sheepdog.config.json"),
        JSON.stringify({ host: "fear", sshPort: 2200, shell: "/opt/python" }),
      );
      const run = await sheepdog(["config", "--json", "--shell", "/usr/bin/python3.11"], {
        cwd: dir,
        env: { SHEEPDOG_SSH_PORT: "2222" },
      });
      expect(run.code).toBe(0);
      const config = JSON.parse(run.stdout);
      expect(config.host).toEqual({
        value: "fear",
        source: `file ${join(dir, "sheepdog.config.json")}`,
      });
      expect(config.sshPort).toEqual({ value: 2222, source: "env" });
      expect(config.shell).toEqual({ value: "/usr/bin/python3.11", source: "option" });
      expect(config.sshDir).toEqual({ value: ".sheepdog", source: "default" });

      writeFileSync(
        join(dir, "sheepdog.config.json"),
        JSON.stringify({ host: "fear", ssh_port: 1 }),
      );
      const wrong = await sheepdog(["config"], { cwd: dir });
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toContain('Unknown configuration option "ssh_port" in');
      expect(wrong.stderr).toContain('spells it "sshPort"');

      rmSync(join(dir, "sheepdog.config.json"));
      const ran = join(dir, "ran");
      writeFileSync(
        join(dir, "sheepdog.config.ts"),
        `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(ran)}, "code ran");\nconst port: number = 2300;\nexport default { host: "ts-host", sshPort: port };\n`,
      );
      // A TypeScript file in the working directory runs code: it is read only when named.
      const unasked = JSON.parse((await sheepdog(["config", "--json"], { cwd: dir })).stdout);
      expect(unasked.host.value).toBeUndefined();
      expect(existsSync(ran)).toBe(false);
      const fromTs = JSON.parse(
        (await sheepdog(["config", "--json", "--config", "sheepdog.config.ts"], { cwd: dir }))
          .stdout,
      );
      expect(existsSync(ran)).toBe(true);
      expect(fromTs.host.value).toBe("ts-host");
      expect(fromTs.sshPort).toEqual({
        value: 2300,
        source: `file ${join(dir, "sheepdog.config.ts")}`,
      });

      const retries = JSON.parse(
        (await sheepdog(["config", "--json", "--retries", "2", "--retry-on", "any"], { cwd: dir }))
          .stdout,
      );
      expect(retries.retries).toEqual({ value: 2, source: "option" });
      expect(retries.retryOn).toEqual({ value: "any", source: "option" });
      const badRetry = await sheepdog(["config", "--retry-on", "sometimes"], { cwd: dir });
      expect(badRetry.code).toBe(2);
      expect(badRetry.stderr).toContain('"retryOn" must be "died" or "any", not "sometimes".');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("prints the request id with --async, and serve --request receives its results", async () => {
    const submitted = await sheepdog(
      ["map", "model.py:nap", "--args", "-", "--host", "local", "--async"],
      {
        cwd,
        stdin: "[1]\n[1]\n",
      },
    );
    expect(submitted.code).toBe(0);
    const id = submitted.stdout.trim();
    expect(id).toMatch(/^\d+$/);
    expect(submitted.stderr).toContain(`sheepdog serve --request ${id}`);
    // The workers lost their server when the command ended; they retry until one is back.
    const served = await sheepdog(["serve", "--request", id], { cwd });
    expect(served.code).toBe(0);
    const results = await sheepdog(["results", id], { cwd });
    expect(results.stdout).toBe("[1] -> 1\n[1] -> 1\n");
  }, 60_000);

  it("cancels the job on Ctrl-C and exits 130", async () => {
    const run = await sheepdog(["map", "model.py:nap", "--args", "-", "--host", "local"], {
      cwd,
      stdin: "[60]\n[60]\n",
      signalAfter: (stderr) => stderr.includes("[sheepdog] request"),
    });
    expect(run.code).toBe(130);
    expect(run.stderr).toContain("Interrupted");
    expect(run.stderr).toContain("The map was aborted");
    // The request shows as cancelled, not in progress.
    const id = /request (\d+):/.exec(run.stderr)?.[1] ?? "";
    const requests = await sheepdog(["requests"], { cwd });
    expect(requests.stdout).toMatch(
      new RegExp(`\\n${id}\\s+\\S+ \\S+\\s+2\\s+0\\s+0\\s+cancelled \\(interrupted\\)(\\n|$)`),
    );
    const status = await sheepdog(["status", id], { cwd });
    expect(status.stdout).toMatch(
      new RegExp(
        `^request ${id}: 0/2 done, 0 results, 0 errors\\ncancelled at \\S+ \\S+ \\(interrupted\\)\\n`,
      ),
    );
  }, 60_000);

  it("doctor checks Python and a one-call map on this machine, one line per step, and exits 0", async () => {
    const run = await sheepdog(["doctor", "--host", "local"], { cwd });
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^✓ configuration: host "local", /);
    expect(lines[1]).toMatch(
      /^✓ Python on this machine: \/usr\/bin\/python3 on this machine is Python 3\./,
    );
    expect(lines[2]).toMatch(
      /^✓ a one-call map on this machine: a one-call map ran on \S+ with Python 3\./,
    );
    expect(lines[3]).toBe("A map with this configuration would work.");
    const json = await sheepdog(["doctor", "--host", "local", "--json"], { cwd });
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.ok).toBe(true);
    expect(report.steps.map((step: { id: string }) => step.id)).toEqual([
      "configuration",
      "python",
      "map",
    ]);
  }, 60_000);

  it("doctor says what to change and exits 1 when a map would not work", async () => {
    const run = await sheepdog(["doctor", "--host", "local", "--shell", "/no/such/python3"], {
      cwd,
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      "✗ Python on this machine: /no/such/python3 does not run on this machine (exit status 127",
    );
    expect(run.stdout).toContain(
      "\n    fix: Set shell (--shell, SHEEPDOG_SHELL) to a Python 3.8 or later",
    );
    expect(run.stdout).toContain(
      "\n- a one-call map on this machine: skipped: it needs Python (above)\n",
    );
    expect(run.stdout).toMatch(/would not work: change what the first ✗ above says\.\n$/);
    const bad = await sheepdog(["doctor", "--host", "local", "--timeout", "soon"], { cwd });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--timeout takes a whole number of seconds, not "soon".');
  }, 60_000);

  it("draws a live progress line on a terminal", async () => {
    const run = await new Promise<Run>((resolve, reject) => {
      const command = `${process.execPath} ${cli} map model.py:nap --args args.tty.jsonl --host local`;
      writeFileSync(join(cwd, "args.tty.jsonl"), "[0.5]\n[0.5]\n[0.5]\n");
      const child = spawn("script", ["-qefc", command, "/dev/null"], { cwd, env: process.env });
      let stdout = "";
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
      });
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr: "" }));
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("\r\x1b[K[sheepdog] request");
    expect(run.stdout).toMatch(/3\/3 done \(0 failed\), 0 running, 0 queued, [\d.]+\/s/);
  }, 60_000);
});
