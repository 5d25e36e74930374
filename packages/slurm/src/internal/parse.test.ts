import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { describeEnd } from "./ends.js";
import {
  parseAccounting,
  parseMaxArraySize,
  parseSacct,
  parseSacctBytes,
  parseSbatchJobId,
  parseScontrolJobs,
  parseSqueue,
} from "./parse.js";

const fixture = (name: string) =>
  readFileSync(new URL(`../__fixtures__/${name}`, import.meta.url), "utf8");

describe("sbatch and scontrol show config", () => {
  it("reads the job id of --parsable, on a federation too", () => {
    expect(parseSbatchJobId("31\n")).toBe("31");
    expect(parseSbatchJobId("4242;cluster2\n")).toBe("4242");
    expect(parseSbatchJobId("sbatch: error: Batch job submission failed\n")).toBeUndefined();
  });
  it("reads MaxArraySize and whether accounting goes to slurmdbd", () => {
    const config =
      "MaxArraySize            = 1001\nAccountingStorageType   = accounting_storage/slurmdbd\n";
    expect(parseMaxArraySize(config)).toBe(1001);
    expect(parseAccounting(config)).toBe(true);
    expect(parseAccounting("AccountingStorageType   = accounting_storage/none\n")).toBe(false);
    expect(parseMaxArraySize("nothing")).toBeUndefined();
  });
});

describe("squeue", () => {
  it("reads one line per array task, skipping what it cannot read", () => {
    expect(
      parseSqueue("35|1|PENDING||None\n35|3|RUNNING|vm|None\nbad line\n35|[4-9]|PENDING||None\n"),
    ).toEqual([
      { jobId: "35", index: 1, state: "PENDING", node: "", reason: "None" },
      { jobId: "35", index: 3, state: "RUNNING", node: "vm", reason: "None" },
    ]);
  });
});

describe("sacct (recorded on the test cluster)", () => {
  // Tasks: 1 exited 3, 2 SIGKILLed itself, 3 was scancelled while it slept, 4 ran to its end.
  const records = parseSacct(fixture("sacct-array.txt"));

  it("reads one record per array task, with its batch step's MaxRSS", () => {
    expect(records.map((r) => [r.index, r.state, r.exitCode, r.signal])).toEqual([
      [1, "FAILED", 3, 0],
      [2, "FAILED", 0, 9],
      [3, "CANCELLED", 0, 15],
      [4, "COMPLETED", 0, 0],
    ]);
    expect(records[2]).toMatchObject({ cancelledBy: "1001", maxRssBytes: 8868 * 1024 });
  });

  it("gives each ending its kind, Slurm's state and a reason", () => {
    const ends = records.map(describeEnd);
    expect(ends.map((end) => [end.kind, end.exitCode, end.signal])).toEqual([
      ["exit", 3, null],
      ["signal", null, 9],
      ["cancelled", null, 15],
      ["exit", 0, null],
    ]);
    expect(ends[1]?.reason).toBe("killed by signal 9 (SIGKILL) (Slurm: FAILED, ExitCode 0:9)");
    expect(ends[2]?.reason).toContain("was cancelled by uid 1001 (scancel)");
    expect(ends[2]?.schedulerState).toBe("CANCELLED by 1001");
  });

  it("reads sizes as binary multiples", () => {
    expect(parseSacctBytes("8868K")).toBe(8868 * 1024);
    expect(parseSacctBytes("2.50M")).toBe(Math.round(2.5 * 1024 ** 2));
    expect(parseSacctBytes("0")).toBe(0);
    expect(parseSacctBytes("")).toBeUndefined();
  });
});

describe("scontrol show job (recorded on the test cluster)", () => {
  it("reads the same endings as sacct, with Slurm's reasons", () => {
    const records = parseScontrolJobs(fixture("scontrol-array.txt"));
    expect(
      records
        .sort((a, b) => a.index - b.index)
        .map((r) => [r.index, r.state, r.exitCode, r.signal, r.reason ?? ""]),
    ).toEqual([
      [1, "FAILED", 3, 0, "NonZeroExitCode"],
      [2, "FAILED", 0, 9, "JobLaunchFailure"],
      [3, "CANCELLED", 0, 15, ""],
      [4, "COMPLETED", 0, 0, ""],
    ]);
  });
});

describe("kinds of every final state", () => {
  const end = (state: string, exitCode = 0, signal = 0) =>
    describeEnd({ jobId: "1", index: 1, state, exitCode, signal });
  it("maps Slurm's states to the kinds every scheduler shares", () => {
    expect(end("TIMEOUT").kind).toBe("time-limit");
    expect(end("DEADLINE").kind).toBe("time-limit");
    expect(end("OUT_OF_MEMORY", 0, 9).kind).toBe("out-of-memory");
    expect(end("NODE_FAIL").kind).toBe("node-failure");
    expect(end("BOOT_FAIL").kind).toBe("node-failure");
    expect(end("PREEMPTED").kind).toBe("preempted");
    expect(end("CANCELLED").kind).toBe("cancelled");
    expect(end("FAILED", 127).kind).toBe("never-started");
    expect(end("FAILED", 137).kind).toBe("signal");
    expect(end("FAILED", 1).kind).toBe("exit");
  });
  it("says the limit in words, with Slurm's own", () => {
    expect(end("TIMEOUT", 0, 15).reason).toBe(
      "exceeded its time limit (--time); killed by signal 15 (SIGTERM) (Slurm: TIMEOUT, ExitCode 0:15)",
    );
    expect(end("FAILED", 127).reason).toBe(
      "never ran: the interpreter was not found (Slurm: FAILED, ExitCode 127:0)",
    );
  });
});

describe("a task Slurm's accounting killed over its --mem (no cgroups: FAILED 0:9)", () => {
  it("is out-of-memory when its peak resident memory reached its request", () => {
    const text = [
      "77_1|sheepdog_9_ab|FAILED|0:9||300M",
      "77_1.batch|batch|CANCELLED by 0|0:9|356312K|",
      "77_2|sheepdog_9_ab|FAILED|0:9||300M",
      "77_2.batch|batch|FAILED|0:9|10240K|",
    ].join("\n");
    const [over, under] = parseSacct(text).map(describeEnd);
    expect(over).toMatchObject({ kind: "out-of-memory", signal: 9 });
    expect(over?.reason).toContain("exceeded its memory limit (--mem=300 MiB, peak 348 MiB)");
    expect(under).toMatchObject({ kind: "signal", signal: 9 });
  });
});
