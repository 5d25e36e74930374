import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JobRef, Remote, Scheduler, TaskState } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { localRemote, localScheduler } from "@sheepdog/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SheepdogConfig } from "../config.js";
import type { DoctorBackends, DoctorReport } from "./doctor.js";
import { diagnose, doctor } from "./doctor.js";

/*
 * The report's logic, with this machine standing in for a head node: a local remote under
 * another name (so the tasks count as running elsewhere: the server listens on every
 * interface and the routes are checked) and the local scheduler. Its relay is real, over the
 * local remote's loopback forward; the map's workers are real python3 processes.
 */

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sheepdog-doctor-test-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A head node that is this machine; `exec` may be changed. */
function headNode(change: Partial<Remote> = {}): Remote {
  return { ...localRemote(), name: "head", ...change };
}

/** The checks' backends; doctor closes the scheduler it opened, so each run gets its own. */
function backends(
  remote: () => Remote,
  schedulerOf: () => Scheduler = () => localScheduler({ concurrency: 2 }),
) {
  return {
    login: async () => remote(),
    detectScheduler: async () => "gridengine",
    scheduler: async () => schedulerOf(),
    local: () => Promise.reject(new Error("not local")),
  } satisfies DoctorBackends;
}

function config(extra: Partial<SheepdogConfig> = {}): Partial<SheepdogConfig> {
  return { host: "head", dbfile: join(dir, "unused.sqlite"), ...extra };
}

function statuses(report: DoctorReport): Record<string, string> {
  return Object.fromEntries(report.steps.map((step) => [step.id, step.status]));
}

function step(report: DoctorReport, id: string) {
  const found = report.steps.find((s) => s.id === id);
  if (!found) throw new Error(`no step ${id} in ${JSON.stringify(report)}`);
  return found;
}

describe("doctor", () => {
  it('host "local": Python on this machine and a one-call map, nothing left in the dbfile', async () => {
    const dbfile = join(dir, "local.sqlite");
    const report = await doctor({ host: "local", dbfile });
    expect(statuses(report)).toEqual({ configuration: "ok", python: "ok", map: "ok" });
    expect(report.ok).toBe(true);
    expect(step(report, "python").detail).toMatch(/is Python 3\.\d+\.\d+/);
    expect(step(report, "map").detail).toMatch(/ran on \S+ with Python 3\.\d+/);
    const { existsSync } = await import("node:fs");
    expect(existsSync(dbfile)).toBe(false);
  }, 60_000);

  it("an invalid configuration fails the first step and skips the rest, saying why", async () => {
    const report = await doctor({ host: "head", conect: "relay" } as Partial<SheepdogConfig>);
    expect(report.ok).toBe(false);
    expect(step(report, "configuration")).toMatchObject({ status: "failed" });
    expect(step(report, "configuration").detail).toContain('Did you mean "connect"?');
    expect(report.steps.slice(1).map((s) => s.status)).toEqual(Array(6).fill("skipped"));
    expect(step(report, "map").detail).toBe("the configuration is invalid");
  });

  it("every step passes on a head node that reaches this machine", async () => {
    const seen: string[] = [];
    const report = await diagnose(
      config(),
      { onStep: (s) => seen.push(s.id) },
      backends(() => headNode()),
    );
    expect(statuses(report), JSON.stringify(report, null, 2)).toEqual({
      configuration: "ok",
      ssh: "ok",
      scheduler: "ok",
      python: "ok",
      direct: "ok",
      relay: "ok",
      map: "ok",
    });
    expect(report.ok).toBe(true);
    expect(seen).toEqual(report.steps.map((s) => s.id));
    expect(step(report, "scheduler").detail).toMatch(
      /^gridengine, found on the head node; its commands answer \(2 slots\)$/,
    );
  }, 60_000);

  it('direct fails, the relay works: ok with connect "auto", and the map goes through the relay', async () => {
    const report = await diagnose(
      config({ localhost: "nowhere.invalid" }),
      {},
      backends(() => headNode()),
    );
    expect(statuses(report), JSON.stringify(report, null, 2)).toMatchObject({
      direct: "failed",
      relay: "ok",
      map: "ok",
    });
    expect(report.ok).toBe(true);
    expect(step(report, "direct").detail).toContain(
      'so the workers go through the relay (connect is "auto")',
    );
    expect(step(report, "direct").fix).toContain("Nothing needs to change while the relay works");
  }, 60_000);

  it('direct fails with connect "direct": not ok, the map is skipped, the fix names connect', async () => {
    const report = await diagnose(
      config({ localhost: "nowhere.invalid", connect: "direct" }),
      {},
      backends(() => headNode()),
    );
    expect(statuses(report)).toMatchObject({ direct: "failed", relay: "ok", map: "skipped" });
    expect(report.ok).toBe(false);
    expect(step(report, "direct").fix).toContain('Set connect to "auto" (the default) or "relay"');
    expect(step(report, "map").detail).toContain('connect "direct" uses');
  }, 60_000);

  it("no route at all: a head node that cannot forward ports and cannot reach this machine", async () => {
    const report = await diagnose(
      config({ localhost: "nowhere.invalid" }),
      {},
      backends(() => headNode({ tunnelBack: undefined })),
    );
    expect(statuses(report)).toMatchObject({ direct: "failed", relay: "failed", map: "skipped" });
    expect(step(report, "relay").detail).toContain("head cannot forward ports");
    expect(report.ok).toBe(false);
  }, 60_000);

  it("a Python too old on the head node fails its step and skips the routes and the map", async () => {
    const remote = headNode();
    const report = await diagnose(
      config({ shell: "/opt/python3.6/bin/python3" }),
      {},
      backends(() => ({
        ...remote,
        exec: async (command, options) =>
          command.includes("version_info")
            ? { stdout: "3.6.9\n", stderr: "", code: 0, signal: null }
            : remote.exec(command, options),
      })),
    );
    expect(step(report, "python")).toMatchObject({
      status: "failed",
      detail: "/opt/python3.6/bin/python3 on the head node is Python 3.6.9, too old",
    });
    expect(step(report, "python").fix).toContain("Set shell");
    expect(statuses(report)).toMatchObject({ direct: "skipped", relay: "skipped", map: "skipped" });
    expect(report.ok).toBe(false);
  }, 60_000);

  it("a refused login fails the SSH step with the login's own message and skips the rest", async () => {
    const refused = Object.assign(
      new SheepdogError(
        "SSH_HOST_KEY_UNKNOWN",
        "deploy-ssh",
        'Host key for head:22 is not in /tmp/empty (the server presented ...), so Sheepdog refuses to connect. Run "ssh-keyscan -p 22 head >> /tmp/empty" after checking the fingerprint with the host\'s administrator, or set sshKnownHosts.',
      ),
      { keyscanCommand: "ssh-keyscan -p 22 head >> /tmp/empty" },
    );
    const report = await diagnose(
      config(),
      {},
      {
        ...backends(() => headNode()),
        login: () => Promise.reject(refused),
      },
    );
    const ssh = step(report, "ssh");
    expect(ssh.status).toBe("failed");
    expect(ssh.detail).toMatch(/^Host key for head:22 is not in \/tmp\/empty/);
    expect(ssh.fix).toContain('("ssh-keyscan -p 22 head >> /tmp/empty")');
    expect(ssh.fix).toContain("sshKnownHosts");
    expect(report.steps.slice(2).every((s) => s.status === "skipped")).toBe(true);
    expect(report.ok).toBe(false);
  });

  it("a job still queued when the time is up: the step says so, how to look, and the job is cancelled", async () => {
    const cancelled: JobRef[] = [];
    const stuck: Scheduler = {
      name: "stuck",
      statusIntervalMs: 100,
      submit: async (spec) => ({
        scheduler: "stuck",
        id: "77",
        tasks: spec.tasks,
        parts: [{ jobId: "77", firstTask: 1, lastTask: spec.tasks }],
        directory: spec.directory,
        name: spec.name,
      }),
      status: async (job) =>
        new Map<number, TaskState>(
          Array.from({ length: job.tasks }, (_, i) => [i + 1, { state: "queued" }]),
        ),
      cancel: async (job) => {
        cancelled.push(job);
      },
    };
    const report = await diagnose(
      config(),
      { timeoutSeconds: 2 },
      backends(
        () => headNode(),
        () => stuck,
      ),
    );
    const map = step(report, "map");
    expect(map.status).toBe("failed");
    expect(map.detail).toBe(
      "the test job (stuck job 77) was still queued after 2 s, so it was cancelled: the queue is busy, or it cannot start a job with these options",
    );
    expect(map.fix).toContain("--timeout <seconds>");
    expect(cancelled.map((job) => job.id)).toEqual(["77"]);
    expect(report.ok).toBe(false);
  }, 60_000);
});
