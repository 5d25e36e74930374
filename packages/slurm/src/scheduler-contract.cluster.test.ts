import { randomBytes } from "node:crypto";
import type { Remote } from "@sheepdog/contracts";
import { describeSchedulerContract } from "@sheepdog/contracts/testing";
import { connect } from "@sheepdog/deploy-ssh";
import { describeCluster, loginSettings } from "@sheepdog/testcluster";
import { afterAll } from "vitest";
import { slurm } from "./slurm.js";

const directory = `.sheepdog-slurm-contract/${process.pid}_${randomBytes(3).toString("hex")}`;

describeCluster("slurm meets the Scheduler contract on the test cluster", (cluster) => {
  const remotes: Remote[] = [];

  async function open(): Promise<Remote> {
    const remote = await connect(loginSettings(cluster));
    remotes.push(remote);
    return remote;
  }

  afterAll(async () => {
    const [first] = remotes;
    await first
      ?.exec(`rm -rf '${directory}'; rmdir .sheepdog-slurm-contract 2>/dev/null; true`)
      .catch(() => undefined);
    await Promise.all(remotes.map((remote) => remote.close()));
  });

  describeSchedulerContract("slurm", async () => slurm(await open()), {
    directory,
    shell: cluster.python,
    jobOptions: ["--time=0:02:00"],
    memoryRequest: { options: ["--mem=2G"], bytes: 2 * 1024 ** 3 },
    timeout: 60_000,
  });
});
