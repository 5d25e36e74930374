import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JobSpec } from "@sheepdog/contracts";
import { afterAll, describe, expect, it } from "vitest";
import { jobScript, resourceDirectives } from "./job-script.js";

const spec = (over: Partial<JobSpec> = {}): JobSpec => ({
  name: "sheepdog_7_ab12",
  tasks: 5,
  shell: "/usr/bin/python3",
  options: [],
  directory: ".sheepdog",
  program: "print(1)\n",
  ...over,
});

const dir = mkdtempSync(join(tmpdir(), "slurm-script-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a script as a Slurm node would (`/bin/sh`, with the array index set). */
function run(script: string, index: number) {
  const file = join(dir, `job-${index}.sh`);
  writeFileSync(file, script);
  return spawnSync("/bin/sh", [file], {
    env: { PATH: "/usr/bin:/bin", SLURM_ARRAY_TASK_ID: String(index) },
    encoding: "utf8",
  });
}

describe("jobScript", () => {
  it("writes the directives in order: resources, the user's options, then Sheepdog's", () => {
    const script = jobScript(
      spec({
        options: ["--time=0:30:00", "-p short"],
        resources: { memoryBytes: 2 * 1024 ** 3, timeSeconds: 90 },
      }),
      { firstTask: 3, lastTask: 5 },
    );
    expect(script.split("\n").filter((line) => line.startsWith("#"))).toEqual([
      "#!/bin/sh",
      "#SBATCH --mem=2048M",
      "#SBATCH --time=0:01:30",
      "#SBATCH --time=0:30:00",
      "#SBATCH -p short",
      "#SBATCH --job-name=sheepdog_7_ab12",
      "#SBATCH --array=1-3",
      "#SBATCH --output=sheepdog_7_ab12.o%A.%a",
      "#SBATCH --error=sheepdog_7_ab12.e%A.%a",
    ]);
  });

  it("runs the program unchanged with the task's number, offset for a later part", () => {
    const program = [
      "import os",
      "# $HOME `id` $(id) 'quotes' \"double\" \\ backslash",
      "print(os.environ['SHEEPDOG_TASK_ID'], repr('$HOME `id`'))",
      "SHEEPDOG_PROGRAM_0000000000000000",
    ].join("\n");
    const script = jobScript(spec({ program: `${program.replace(/\nSHEEPDOG.*$/, "")}\n` }), {
      firstTask: 4,
      lastTask: 5,
    });
    const result = run(script, 2);
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("5 '$HOME `id`'\n");
  });

  it("chooses a heredoc end that no line of the program is", () => {
    const script = jobScript(spec({ program: "print('a')\n" }));
    const delimiter = /<<'(\w+)'/.exec(script)?.[1] ?? "";
    const program = `print('b')\n${delimiter}\nprint('c')\n`;
    const result = run(jobScript(spec({ program })), 1);
    expect(result.stdout).toBe("b\n");
    expect(result.stderr).toMatch(/NameError|SyntaxError|not found/);
  });

  it("refuses bad names, shells, directories and ranges", () => {
    expect(() => jobScript(spec({ name: "1abc" }))).toThrow(/needs a letter or "_" first/);
    expect(() => jobScript(spec({ shell: "python3" }))).toThrow(/absolute path/);
    expect(() => jobScript(spec({ directory: "-rf" }))).toThrow(/cannot be used/);
    expect(() => jobScript(spec({ directory: "a b" }))).toThrow(/cannot be used/);
    expect(() => jobScript(spec(), { firstTask: 4, lastTask: 9 })).toThrow(/not a range/);
    expect(() => jobScript(spec({ options: ["--mem=1G\n#SBATCH -J x"] }))).toThrow(/line break/);
  });
});

describe("resourceDirectives", () => {
  it("translates resources into sbatch's words", () => {
    expect(
      resourceDirectives({
        memoryBytes: 1536 * 1024 ** 2,
        timeSeconds: 3600,
        cpus: 2,
        queue: "gpu",
      }),
    ).toEqual(["--mem=1536M", "--time=1:00:00", "--cpus-per-task=2", "--partition=gpu"]);
    expect(resourceDirectives(undefined)).toEqual([]);
  });
});
