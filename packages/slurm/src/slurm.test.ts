import type { ExecResult, JobRef, Remote } from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import { slurm } from "./slurm.js";

/** A `Remote` that records every command and answers each with `answer` (success by default). */
function recordingRemote(answer: Partial<ExecResult> = {}): Remote & { commands: string[] } {
  const commands: string[] = [];
  return {
    name: "recording",
    commands,
    async exec(command) {
      commands.push(command);
      return { stdout: "", stderr: "", code: 0, signal: null, ...answer };
    },
    async upload() {},
    async readFile() {
      return new Uint8Array();
    },
    async mkdir() {},
    async close() {},
  };
}

const twoParts: JobRef = {
  scheduler: "slurm",
  id: "2253,2254",
  tasks: 7,
  parts: [
    { jobId: "2253", firstTask: 1, lastTask: 4 },
    { jobId: "2254", firstTask: 5, lastTask: 7 },
  ],
  directory: ".sheepdog",
  name: "x",
};

describe("slurm cancelTasks", () => {
  it("scancels just the tasks named, in one command, a quoted word per part in its own indices", async () => {
    const remote = recordingRemote();
    await slurm(remote).cancelTasks(twoParts, [7, 2, 3, 5, 3]);
    expect(remote.commands).toEqual(["scancel '2253_[2-3]' '2254_[1,3]'"]);
  });

  it("runs no scancel for no tasks, and refuses a number outside the job before running any", async () => {
    const remote = recordingRemote();
    const scheduler = slurm(remote);
    await scheduler.cancelTasks(twoParts, []);
    for (const bad of [[1, 8], [0], [2.5]]) {
      await expect(scheduler.cancelTasks(twoParts, bad)).rejects.toMatchObject({
        code: "INVALID_INPUT",
      });
    }
    await expect(
      scheduler.cancelTasks(
        { ...twoParts, parts: [{ jobId: "1; reboot", firstTask: 1, lastTask: 7 }] },
        [1],
      ),
    ).rejects.toMatchObject({ code: "INVALID_INPUT" });
    expect(remote.commands).toEqual([]);
  });

  it("fails with SCHEDULER_FAILED when scancel refuses", async () => {
    const remote = recordingRemote({
      code: 1,
      stderr: "scancel: error: Unable to contact slurm controller (connect failure)\n",
    });
    await expect(slurm(remote).cancelTasks(twoParts, [1])).rejects.toMatchObject({
      code: "SCHEDULER_FAILED",
      message: expect.stringContaining("Unable to contact slurm controller"),
    });
    expect(remote.commands).toEqual(["scancel '2253_[1]'"]);
  });
});
