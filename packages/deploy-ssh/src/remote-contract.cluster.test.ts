import { describeRemoteContract } from "@sheepdog/contracts/testing";
import { describeCluster, loginSettings } from "@sheepdog/testcluster";
import { connect } from "./index.js";

describeCluster("deploy-ssh on the test cluster", (cluster) => {
  describeRemoteContract("ssh", () => connect(loginSettings(cluster)));
});
