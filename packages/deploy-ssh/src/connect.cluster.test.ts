import { describeCluster } from "@sheepdog/testcluster";
import { expect, it } from "vitest";
import { connect } from "./index.js";

describeCluster("connect (real sshd)", (cluster) => {
  const options = {
    host: cluster.host,
    port: cluster.port,
    user: cluster.user,
    keyfile: cluster.privateKeyPath,
    knownHostsPath: cluster.knownHostsPath,
    sshConfigPath: "/dev/null",
  };

  it("runs commands and moves files over one connection", async () => {
    await using remote = await connect(options);
    expect(remote.name).toBe(`${cluster.user}@${cluster.host}:${cluster.port}`);
    const result = await remote.exec("echo out; echo err >&2; exit 3");
    expect(result).toEqual({ stdout: "out\n", stderr: "err\n", code: 3, signal: null });
    const dir = `.sheepdog-test-${process.pid}`;
    await remote.mkdir(`${dir}/a/b`);
    await remote.upload(`${dir}/a/b/f.txt`, "hello", 0o640);
    expect(Buffer.from(await remote.readFile(`${dir}/a/b/f.txt`)).toString()).toBe("hello");
    const modes = await remote.exec(`stat -c %a ${dir}/a/b/f.txt; rm -rf ${dir}`);
    expect(modes.stdout).toBe("640\n");
  });
});
