import type { TaskEnd } from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import { fixture } from "../__fixtures__/scripted-remote.js";
import {
  describeEnd,
  parseMemoryRequest,
  parseQacct,
  parseQacctBytes,
  parseSeconds,
} from "./qacct.js";

const MiB = 1024 * 1024;

function ends(name: string): [number | null, TaskEnd | undefined][] {
  return parseQacct(fixture(name)).map((record) => [record.taskId, describeEnd(record)]);
}

describe("parseQacct (real Son of Grid Engine 8.1.9 output)", () => {
  it("reads every record of a multi-record answer with its fields", () => {
    const records = parseQacct(fixture("qacct-exits-and-signals.txt"));
    expect(records.map((record) => record.taskId)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(records[3]).toMatchObject({
      jobId: "15",
      jobName: "ends",
      taskId: 4,
      failedCode: 100,
      failedText: "assumedly after job",
      exitStatus: 137,
      hostname: "vm",
      requests: {},
    });
    expect(records[6]?.maxvmemBytes).toBe(Math.round(309.016 * MiB));
  });

  it("reads a job that is not an array (taskid undefined) and its requests", () => {
    const [record] = parseQacct(fixture("qacct-h_vmem-killed.txt"));
    expect(record).toMatchObject({
      taskId: null,
      failedCode: 37,
      failedText: "qmaster enforced h_rt, h_cpu, or h_vmem limit",
      maxvmemBytes: Math.round(624.914 * MiB),
      wallclockSeconds: 1,
      cpuSeconds: 0.57,
      requests: { h_vmem: "400M" },
    });
  });

  it("reads nothing from qacct's 'not found' answer", () => {
    expect(parseQacct("error: job id 99999 not found\n")).toEqual([]);
    expect(parseQacct("")).toEqual([]);
  });
});

describe("describeEnd", () => {
  it("gives exit codes, and signals for statuses above 128", () => {
    expect(ends("qacct-exits-and-signals.txt")).toEqual([
      [1, { kind: "exit", exitCode: 0, signal: null, reason: "exited with status 0" }],
      [2, { kind: "exit", exitCode: 3, signal: null, reason: "exited with status 3" }],
      // 200 - 128 = 72 is no signal: a plain exit status.
      [3, { kind: "exit", exitCode: 200, signal: null, reason: "exited with status 200" }],
      [
        4,
        {
          kind: "signal",
          exitCode: null,
          signal: 9,
          failed: { code: 100, text: "assumedly after job" },
          reason: "killed by signal 9 (SIGKILL) (GridEngine: failed 100, assumedly after job)",
        },
      ],
      [
        5,
        {
          kind: "signal",
          exitCode: null,
          signal: 15,
          failed: { code: 100, text: "assumedly after job" },
          reason: "killed by signal 15 (SIGTERM) (GridEngine: failed 100, assumedly after job)",
        },
      ],
      // sys.exit(137): shell convention reads it as SIGKILL, as qacct itself does ("Killed").
      [6, { kind: "signal", exitCode: null, signal: 9, reason: "killed by signal 9 (SIGKILL)" }],
      [
        7,
        {
          kind: "exit",
          exitCode: 0,
          signal: null,
          maxvmemBytes: Math.round(309.016 * MiB),
          reason: "exited with status 0",
        },
      ],
    ]);
  });

  it("says a task over -l h_rt exceeded its run-time limit", () => {
    expect(ends("qacct-h_rt.txt")[0]?.[1]).toEqual({
      kind: "time-limit",
      exitCode: null,
      signal: 9,
      failed: { code: 37, text: "qmaster enforced h_rt, h_cpu, or h_vmem limit" },
      maxvmemBytes: Math.round(8.047 * MiB),
      reason: "exceeded its run-time limit (h_rt=2) and was killed by signal 9 (SIGKILL)",
    });
  });

  it("says a task killed over -l h_vmem exceeded its memory limit", () => {
    expect(ends("qacct-h_vmem-killed.txt")[0]?.[1]).toMatchObject({
      kind: "out-of-memory",
      exitCode: null,
      signal: 9,
      failed: { code: 37 },
      maxvmemBytes: Math.round(624.914 * MiB),
      reason: "exceeded its memory limit (h_vmem=400M) and was killed by signal 9 (SIGKILL)",
    });
  });

  it("says a task killed over -l h_cpu exceeded its CPU time limit", () => {
    expect(ends("qacct-h_cpu.txt")[0]?.[1]).toMatchObject({
      kind: "time-limit",
      exitCode: null,
      signal: 9,
      failed: { code: 100 },
      reason: "exceeded its CPU time limit (h_cpu=2) and was killed by signal 9 (SIGKILL)",
    });
  });

  it("says a task stopped by s_rt's SIGUSR1 exceeded its soft run-time limit", () => {
    expect(ends("qacct-s_rt.txt")[0]?.[1]).toMatchObject({
      kind: "time-limit",
      exitCode: null,
      signal: 10,
      reason: "exceeded its soft run-time limit (s_rt=2) and was killed by signal 10 (SIGUSR1)",
    });
  });

  it("mentions the memory limit when a task under h_vmem exits with an error", () => {
    expect(ends("qacct-h_vmem-memoryerror.txt")[0]?.[1]).toEqual({
      kind: "exit",
      exitCode: 1,
      signal: null,
      reason: "exited with status 1 (it ran under a memory limit, h_vmem=300M)",
    });
  });

  it("says a task that never started never ran, with GridEngine's failure", () => {
    expect(ends("qacct-failed-27-shell.txt")).toEqual(
      [1, 2, 3].map((task) => [
        task,
        {
          kind: "never-started",
          exitCode: null,
          signal: null,
          failed: { code: 27, text: "searching requested shell" },
          reason: "never ran: GridEngine failed 27 (searching requested shell)",
        },
      ]),
    );
  });

  it("reports tasks killed by qdel as killed by SIGKILL", () => {
    const killed = ends("qacct-array-qdel-running.txt").filter(([task]) => Number(task) >= 9);
    expect(killed.map(([task, end]) => [task, end?.signal, end?.exitCode])).toEqual([
      [9, 9, null],
      [10, 9, null],
    ]);
  });

  it("does not treat a record of a task GridEngine will run again as its end", () => {
    const [record] = parseQacct(fixture("qacct-h_rt.txt"));
    if (!record) throw new Error("no record");
    expect(describeEnd({ ...record, failedCode: 25, failedText: "rescheduling" })).toBeUndefined();
  });
});

describe("units", () => {
  it("reads qacct's binary sizes", () => {
    expect(parseQacctBytes("0.000B")).toBe(0);
    expect(parseQacctBytes("7.844KB")).toBe(Math.round(7.844 * 1024));
    expect(parseQacctBytes("1.5G")).toBe(1.5 * 1024 ** 3);
    expect(parseQacctBytes("123")).toBe(123);
    expect(parseQacctBytes("lots")).toBeNull();
  });

  it("reads GridEngine memory requests: K/M/G binary, k/m/g decimal", () => {
    expect(parseMemoryRequest("400M")).toBe(400 * MiB);
    expect(parseMemoryRequest("2g")).toBe(2e9);
    expect(parseMemoryRequest("1024")).toBe(1024);
  });

  it("reads GridEngine times", () => {
    expect(parseSeconds("2")).toBe(2);
    expect(parseSeconds("0:0:2")).toBe(2);
    expect(parseSeconds("1:30:00")).toBe(5400);
    expect(parseSeconds("::30")).toBe(30);
    expect(parseSeconds("2.003s")).toBe(2.003);
    expect(parseSeconds("soon")).toBeNull();
  });
});
