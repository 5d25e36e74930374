import { randomBytes } from "node:crypto";
import type { JobRef, Remote, TaskState } from "@sheepdog/contracts";
import { connect } from "@sheepdog/deploy-ssh";
import { describeCluster, loginSettings } from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { SlurmScheduler } from "./slurm.js";
import { slurm } from "./slurm.js";

const run = `${process.pid}_${randomBytes(3).toString("hex")}`;
const directory = `.sheepdog-slurm-stderr/${run}`;

describeCluster("slurm: why a task ended badly, from its stderr", (cluster) => {
  let remote: Remote;
  let scheduler: SlurmScheduler;
  const submitted: JobRef[] = [];

  beforeAll(async () => {
    remote = await connect(loginSettings(cluster));
    scheduler = slurm(remote);
  });

  afterAll(async () => {
    if (!remote) return;
    await Promise.all(submitted.map((job) => scheduler.cancel(job).catch(() => undefined)));
    await remote
      .exec(`rm -rf '${directory}'; rmdir .sheepdog-slurm-stderr 2>/dev/null; true`)
      .catch(() => undefined);
    await scheduler.close();
    await remote.close();
  });

  async function finished(job: JobRef): Promise<Map<number, TaskState>> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const states = await scheduler.status(job);
      if ([...states.values()].every((state) => state.state === "finished")) return states;
      if (Date.now() > deadline) throw new Error(`job ${job.id}: ${JSON.stringify([...states])}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  it("adds the end of the stderr of a task that exits 1 or lacks its interpreter", async () => {
    const wrapper = `${cluster.home}/${directory}/python-wrapper`;
    const made = await remote.exec(
      `mkdir -p '${directory}' && printf '#!/bin/sh\\nexec /no/such/python3 "$@"\\n' > '${wrapper}' && chmod 700 '${wrapper}'`,
    );
    expect(made.code, made.stderr).toBe(0);
    const base = { options: ["--time=0:02:00"], directory };
    const failing = await scheduler.submit({
      ...base,
      name: `st_${run}_1`,
      tasks: 2,
      shell: cluster.python,
      program: [
        "import os, sys",
        'if os.environ["SLURM_ARRAY_TASK_ID"] == "2":',
        "    sys.exit(0)",
        'sys.stderr.write("[sheepdog] [worker] Gave up: the server never answered.\\n")',
        "sys.exit(1)",
      ].join("\n"),
    });
    submitted.push(failing);
    const missing = await scheduler.submit({
      ...base,
      name: `st_${run}_2`,
      tasks: 1,
      shell: wrapper,
      program: "print('never')\n",
    });
    submitted.push(missing);
    const states = await finished(failing);
    expect(states.get(1)).toMatchObject({
      kind: "exit",
      exitCode: 1,
      reason:
        "exited with status 1 (Slurm: FAILED, ExitCode 1:0); the end of its stderr:\n    [sheepdog] [worker] Gave up: the server never answered.",
    });
    expect(states.get(2)).toMatchObject({
      exitCode: 0,
      reason: expect.not.stringContaining("stderr"),
    });
    expect((await finished(missing)).get(1)).toMatchObject({
      exitCode: 127,
      reason: expect.stringMatching(
        /; the end of its stderr:\n {4}\S*python-wrapper: \d+: exec: \/no\/such\/python3: not found$/,
      ),
    });
  }, 90_000);
});
