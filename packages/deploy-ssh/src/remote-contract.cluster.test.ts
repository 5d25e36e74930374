import { describeRemoteContract } from "@sheepdog/contracts/testing";
import { describeCluster } from "@sheepdog/testcluster";
import { connect } from "./index.js";

describeCluster("deploy-ssh on the test cluster", (cluster) => {
  describeRemoteContract("ssh", () =>
    connect({
      host: cluster.host,
      sshPort: cluster.port,
      sshUser: cluster.user,
      sshKeyfile: cluster.privateKeyPath,
      sshKnownHosts: cluster.knownHostsPath,
      sshConfig: "/dev/null",
    }),
  );
});
