import { randomBytes } from "node:crypto";
import type { Remote } from "@sheepdog/contracts";
import { describeSchedulerContract } from "@sheepdog/contracts/testing";
import { connect } from "@sheepdog/deploy-ssh";
import { describeCluster, loginSettings } from "@sheepdog/testcluster";
import { afterAll } from "vitest";
import { gridEngine } from "./grid-engine.js";

const directory = `.sheepdog-scheduler-contract/${process.pid}_${randomBytes(3).toString("hex")}`;

describeCluster("gridEngine meets the Scheduler contract on the test cluster", (cluster) => {
  const remotes: Remote[] = [];

  async function open(): Promise<Remote> {
    const remote = await connect(loginSettings(cluster));
    remotes.push(remote);
    return remote;
  }

  afterAll(async () => {
    const [first] = remotes;
    await first
      ?.exec(`rm -rf '${directory}'; rmdir .sheepdog-scheduler-contract 2>/dev/null; true`)
      .catch(() => undefined);
    await Promise.all(remotes.map((remote) => remote.close()));
  });

  describeSchedulerContract("gridengine", async () => gridEngine(await open()), {
    directory,
    shell: cluster.python,
    jobOptions: ["-l h_rt=0:2:0"],
    memoryRequest: { options: ["-l mem_grab=2G"], bytes: 2 * 1024 ** 3 },
    timeout: 60_000,
  });
});
