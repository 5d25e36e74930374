import { describe, expect, it } from "vitest";
import { fixture } from "../__fixtures__/scripted-remote.js";
import { hostOf, parseClusterSlots, parseErrorReasons, parseQstatXml, phaseOf } from "./qstat.js";
import { forEachTask } from "./task-ranges.js";

function tasksOf(entry: ReturnType<typeof parseQstatXml>[number]): number[] | null {
  if (!entry.tasks) return null;
  const tasks: number[] = [];
  forEachTask(entry.tasks, 1, 1_000_000, (task) => tasks.push(task));
  return tasks;
}

describe("parseQstatXml (real Son of Grid Engine 8.1.9 output)", () => {
  it("reads running tasks, a pending range, a held array and a job that is not an array", () => {
    const entries = parseQstatXml(fixture("qstat-running-pending-held.xml"));
    expect(entries.map((entry) => [entry.jobId, entry.state, tasksOf(entry), entry.queue])).toEqual(
      [
        ["11", "r", [1], "all.q@vm"],
        ["11", "r", [2], "all.q@vm"],
        ["11", "r", [3], "all.q@vm"],
        ["11", "r", [4], "all.q@vm"],
        ["11", "qw", [5, 6, 7, 8, 9, 10], null],
        ["13", "qw", [1, 2, 3], null],
        ["14", "qw", null, null],
        ["12", "hqw", [1, 2, 3], null],
      ],
    );
  });

  it("reads a pending task list written with commas (9,10)", () => {
    const pending = parseQstatXml(fixture("qstat-task-list.xml")).filter(
      (entry) => entry.jobId === "11" && entry.state === "qw",
    );
    expect(pending.map(tasksOf)).toEqual([[9, 10]]);
  });

  it("reads an array in the error state Eqw", () => {
    const entries = parseQstatXml(fixture("qstat-eqw-held-single.xml"));
    const eqw = entries.find((entry) => entry.jobId === "13");
    expect(eqw && [eqw.state, tasksOf(eqw)]).toEqual(["Eqw", [1, 2, 3]]);
    expect(entries.find((entry) => entry.jobId === "14")).toMatchObject({
      state: "r",
      tasks: null,
      queue: "all.q@vm",
    });
  });

  it("reads an empty queue", () => {
    const xml = `<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
  </queue_info>
  <job_info>
  </job_info>
</job_info>`;
    expect(parseQstatXml(xml)).toEqual([]);
  });

  it("refuses text that is not qstat's XML, rather than reading it as 'no jobs'", () => {
    expect(() => parseQstatXml("error: commlib error: got select error")).toThrow(/job_info/);
    expect(() =>
      parseQstatXml("<job_info><job_list><state>r</state></job_list></job_info>"),
    ).toThrow(/job number/);
    expect(() =>
      parseQstatXml(
        "<job_info><job_list><JB_job_number>1</JB_job_number><state>qw</state><tasks>x</tasks></job_list></job_info>",
      ),
    ).toThrow(/task list/);
  });
});

describe("phaseOf", () => {
  it("sorts GridEngine's state letters into queued, running and error", () => {
    for (const state of ["qw", "hqw", "hRwq", "Rq"]) expect(phaseOf(state)).toBe("queued");
    for (const state of ["r", "t", "Rr", "Rt", "hr", "s", "S", "T", "dr", "dt"]) {
      expect(phaseOf(state)).toBe("running");
    }
    for (const state of ["Eqw", "Ehqw", "EhRqw"]) expect(phaseOf(state)).toBe("error");
  });

  it("takes the host from queue@host", () => {
    expect(hostOf("all.q@vm")).toBe("vm");
    expect(hostOf(null)).toBeUndefined();
  });
});

describe("parseErrorReasons (qstat -j of an Eqw job)", () => {
  it("reads each task's reason without its timestamp", () => {
    const reasons = parseErrorReasons(fixture("qstat-j-eqw.txt"));
    expect([...reasons]).toEqual([
      [1, 'unable to find shell "/no/such/python"'],
      [2, 'unable to find shell "/no/such/python"'],
      [3, 'unable to find shell "/no/such/python"'],
    ]);
  });
});

describe("parseClusterSlots (qstat -g c)", () => {
  it("sums the usable slots of every cluster queue", () => {
    expect(parseClusterSlots(fixture("qstat-g-c.txt"))).toBe(4);
    const twoQueues = [
      "CLUSTER QUEUE                   CQLOAD   USED    RES  AVAIL  TOTAL aoACDS  cdsuE  ",
      "--------------------------------------------------------------------------------",
      "all.q                             0.50      2      0      6      8      0      0 ",
      "gpu.q                             0.10      0      0      0      4      0      4 ",
      "long.q                              -NA-    0      0      2      2      0      0 ",
    ].join("\n");
    expect(parseClusterSlots(twoQueues)).toBe(10);
    expect(parseClusterSlots("")).toBeUndefined();
  });
});
