import { describeRemoteContract } from "@sheepdog/contracts/testing";
import { describeCluster } from "@sheepdog/testcluster";
import { connect } from "./index.js";

describeCluster("deploy-ssh on the test cluster", (cluster) => {
  describeRemoteContract("ssh", () =>
    connect({
      host: cluster.host,
      port: cluster.port,
      user: cluster.user,
      keyfile: cluster.privateKeyPath,
      knownHostsPath: cluster.knownHostsPath,
      sshConfigPath: "/dev/null",
    }),
  );
});
