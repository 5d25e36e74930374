import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JobRef } from "@sheepdog/contracts";
import { afterAll, describe, expect, it } from "vitest";
import { ScriptedRemote, ShellRemote } from "../__fixtures__/scripted-remote.js";
import { gridEngine } from "../grid-engine.js";

const marker = "SHEEPDOG-REPORT";

function ref(name: string, directory = "jobs"): JobRef {
  return {
    scheduler: "gridengine",
    id: "7,8",
    tasks: 4,
    parts: [
      { jobId: "7", firstTask: 1, lastTask: 2 },
      { jobId: "8", firstTask: 3, lastTask: 4 },
    ],
    directory,
    name,
  };
}

describe("gridEngine outputLines (find and grep over the remote)", () => {
  const home = mkdtempSync(join(tmpdir(), "sheepdog-ge-output-"));
  afterAll(() => rmSync(home, { recursive: true, force: true }));
  mkdirSync(join(home, "jobs"));
  const files: Record<string, string> = {
    "demo_1.o7.1": `${marker} 1 result\nnot a report\n`,
    "demo_1.o7.2": `${marker} 2 error\n`,
    "demo_1.o8.3": `noise\n${marker} 3 result`,
    "demo_1.o9": `${marker} single job\n`,
    "demo_1.e7.1": `${marker} on stderr\n`,
    "demo_1_r2.o10.1": `${marker} another attempt\n`,
    "demo_1.other.o11.1": `${marker} another name\n`,
    "demo_1x.o12.1": `${marker} a longer name\n`,
  };
  for (const [file, text] of Object.entries(files)) writeFileSync(join(home, "jobs", file), text);

  it("returns the marked lines of this job's stdout files, every part alike", async () => {
    const lines = await gridEngine(new ShellRemote(home)).outputLines(ref("demo_1"), marker);
    expect(lines.sort()).toEqual([
      `${marker} 1 result`,
      `${marker} 2 error`,
      `${marker} 3 result`,
      `${marker} single job`,
    ]);
  });

  it("matches only this job's name, not a retry's or a longer one", async () => {
    const scheduler = gridEngine(new ShellRemote(home));
    expect(await scheduler.outputLines(ref("demo_1_r2"), marker)).toEqual([
      `${marker} another attempt`,
    ]);
    expect(await scheduler.outputLines(ref("demo_1x"), marker)).toEqual([
      `${marker} a longer name`,
    ]);
  });

  it("takes the marker as fixed text, even one that looks like an option or a pattern", async () => {
    writeFileSync(join(home, "jobs", "odd.o1.1"), "-x.* 'quoted' $(x)\nplain\n");
    const scheduler = gridEngine(new ShellRemote(home));
    expect(await scheduler.outputLines(ref("odd"), "-x.* 'quoted' $(x)")).toEqual([
      "-x.* 'quoted' $(x)",
    ]);
    expect(await scheduler.outputLines(ref("odd"), "pl.in")).toEqual([]);
  });

  it("answers an empty list when nothing matches or the directory is gone", async () => {
    const scheduler = gridEngine(new ShellRemote(home));
    expect(await scheduler.outputLines(ref("demo_1"), "NO-SUCH-MARKER")).toEqual([]);
    expect(await scheduler.outputLines(ref("nothing"), marker)).toEqual([]);
    expect(await scheduler.outputLines(ref("demo_1", "no/such/dir"), marker)).toEqual([]);
  });

  it("rejects with REMOTE_FAILED when the files cannot be read", async () => {
    const remote = new ScriptedRemote().on(/find/, {
      code: 1,
      stderr: "grep: jobs/demo_1.o7.1: Permission denied\n",
    });
    await expect(gridEngine(remote).outputLines(ref("demo_1"), marker)).rejects.toMatchObject({
      code: "REMOTE_FAILED",
      message: expect.stringContaining("grep: jobs/demo_1.o7.1: Permission denied"),
    });
    const lost = new ScriptedRemote().on(/find/, () => {
      throw new Error("connection lost");
    });
    await expect(gridEngine(lost).outputLines(ref("demo_1"), marker)).rejects.toMatchObject({
      code: "REMOTE_FAILED",
      message: expect.stringContaining("connection lost"),
    });
  });

  it("refuses a marker of several lines and a JobRef that is not its own", async () => {
    const remote = new ScriptedRemote();
    const scheduler = gridEngine(remote);
    await expect(scheduler.outputLines(ref("demo_1"), "a\nb")).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    await expect(scheduler.outputLines(ref("demo_1"), "")).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    await expect(scheduler.outputLines(ref("x'; touch y; '"), marker)).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    expect(remote.commands).toEqual([]);
  });
});
