import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import { describeCluster } from "@sheepdog/testcluster";
import { Client } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, HostKeyChangedError, HostKeyError, HostKeyUnknownError } from "./index.js";

async function rejection(promise: Promise<unknown>): Promise<SheepdogError> {
  try {
    await promise;
  } catch (error) {
    expect(SheepdogError.isInstance(error), String(error)).toBe(true);
    return error as SheepdogError;
  }
  throw new Error("expected a rejection");
}

describeCluster("connect (real sshd)", (cluster) => {
  const dir = mkdtempSync(join(tmpdir(), "sheepdog-deploy-ssh-"));
  const emptyHome = join(dir, "empty-home");
  mkdirSync(join(emptyHome, ".ssh"), { recursive: true });
  const knownLines = readFileSync(cluster.knownHostsPath, "utf8").trim().split("\n");
  const headName = `[${cluster.host}]:${cluster.port}`;
  const jumpName = `[${cluster.jump.host}]:${cluster.jump.port}`;
  const linesFor = (name: string, type?: string): string[] =>
    knownLines.filter((l) => l.startsWith(`${name} `) && (!type || l.split(" ")[1] === type));
  let counter = 0;
  const knownHosts = (lines: string[]): string => {
    const path = join(dir, `known_hosts_${counter++}`);
    writeFileSync(path, lines.length ? `${lines.join("\n")}\n` : "");
    return path;
  };
  const sshConfig = (text: string): string => {
    const path = join(dir, `config_${counter++}`);
    writeFileSync(path, text);
    return path;
  };
  const base = {
    host: cluster.host,
    sshPort: cluster.port,
    sshUser: cluster.user,
    sshKeyfile: cluster.privateKeyPath,
    sshKnownHosts: cluster.knownHostsPath,
    sshConfig: "/dev/null",
  };

  // Tests set HOME and SSH_AUTH_SOCK to control where keys come from; restore them after.
  const saved = { HOME: process.env.HOME, SSH_AUTH_SOCK: process.env.SSH_AUTH_SOCK };
  const withEnv = async <T>(env: Record<string, string | undefined>, body: () => Promise<T>) => {
    const before = { ...process.env };
    Object.assign(process.env, env);
    for (const [key, value] of Object.entries(env))
      if (value === undefined) delete process.env[key];
    try {
      return await body();
    } finally {
      for (const key of Object.keys(env)) {
        if (before[key] === undefined) delete process.env[key];
        else process.env[key] = before[key];
      }
    }
  };
  afterAll(() => {
    process.env.HOME = saved.HOME;
    if (saved.SSH_AUTH_SOCK === undefined) delete process.env.SSH_AUTH_SOCK;
    else process.env.SSH_AUTH_SOCK = saved.SSH_AUTH_SOCK;
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs commands and moves files over one reused connection", async () => {
    await using remote = await connect(base);
    expect(remote.name).toBe(`${cluster.user}@${cluster.host}:${cluster.port}`);
    const result = await remote.exec("echo out; echo err >&2; exit 3");
    expect(result).toEqual({ stdout: "out\n", stderr: "err\n", code: 3, signal: null });
    // The same TCP connection (same client port) serves every command.
    const seen = await Promise.all(
      Array.from({ length: 12 }, () => remote.exec("echo $SSH_CONNECTION")),
    );
    expect(new Set(seen.map((r) => r.stdout)).size).toBe(1);
    const work = `.sheepdog-test-${process.pid}`;
    await remote.mkdir(`${work}/a/b`);
    await remote.upload(`${work}/a/b/f.txt`, "hello", 0o640);
    expect(Buffer.from(await remote.readFile(`${work}/a/b/f.txt`)).toString()).toBe("hello");
    expect((await remote.exec(`stat -c %a ${work}/a/b/f.txt; rm -rf ${work}`)).stdout).toBe(
      "640\n",
    );
  });

  it("queues commands beyond the server's MaxSessions instead of failing", async () => {
    // sshd allows 10 sessions per connection; ask for 20 at once and run 40.
    await using remote = await connect({ ...base, maxConcurrentCommands: 20 });
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => remote.exec(`sleep 0.3; echo ${i}`)),
    );
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 40 }, (_, i) => `${i}\n`));
  });

  describe("host keys", () => {
    for (const type of ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]) {
      it(`accepts a host known only by its ${type} key, plain and hashed`, async () => {
        const lines = linesFor(headName, type);
        expect(lines).toHaveLength(1);
        const plain = knownHosts(lines);
        await using remote = await connect({ ...base, sshKnownHosts: plain });
        expect((await remote.exec("echo ok")).stdout).toBe("ok\n");

        const hashed = knownHosts(lines);
        execFileSync("ssh-keygen", ["-q", "-H", "-f", hashed], { stdio: "ignore" });
        const text = readFileSync(hashed, "utf8");
        expect(text.startsWith("|1|")).toBe(true);
        expect(text).not.toContain(cluster.host);
        await using again = await connect({ ...base, sshKnownHosts: hashed });
        expect((await again.exec("echo ok")).stdout).toBe("ok\n");
      });
    }

    it("refuses an unknown host with the ssh-keyscan command that fixes it", async () => {
      // Only the jump host's keys: the head node on another port is unknown.
      const path = knownHosts(linesFor(jumpName));
      const error = await rejection(connect({ ...base, sshKnownHosts: path }));
      if (!HostKeyUnknownError.isInstance(error)) throw error;
      const unknown = error;
      expect(unknown.code).toBe("SSH_HOST_KEY_UNKNOWN");
      expect(unknown).toMatchObject({
        host: cluster.host,
        port: cluster.port,
        sshKnownHosts: path,
      });
      const command = `ssh-keyscan -p ${cluster.port} ${cluster.host} >> ${path}`;
      expect(unknown.keyscanCommand).toBe(command);
      expect(unknown.message).toContain(`Run "${command}"`);
      expect(unknown.message).toMatch(/, or set sshKnownHosts\.$/);
      expect(unknown.detail).toMatchObject({
        host: cluster.host,
        port: cluster.port,
        sshKnownHosts: path,
        keyscanCommand: command,
      });
      expect([HostKeyError.isInstance(unknown), HostKeyChangedError.isInstance(unknown)]).toEqual([
        true,
        false,
      ]);
      expect(unknown.message).toMatch(/^\[sheepdog\] \[deploy-ssh\] Host key for /);
      // The fingerprint is the one ssh-keygen gives for the key the server presented.
      const pub = join(
        cluster.privateKeyPath.replace(/[^/]+$/, ""),
        `head_host_${unknown.keyType === "ssh-ed25519" ? "ed25519" : unknown.keyType?.startsWith("ecdsa") ? "ecdsa" : "rsa"}_key.pub`,
      );
      if (existsSync(pub)) {
        expect(execFileSync("ssh-keygen", ["-l", "-f", pub], { encoding: "utf8" })).toContain(
          unknown.fingerprint,
        );
      }
      // Running the suggested command really fixes it.
      execFileSync("sh", ["-c", command], { stdio: "ignore" });
      await using remote = await connect({ ...base, sshKnownHosts: path });
      expect((await remote.exec("echo fixed")).stdout).toBe("fixed\n");
    });

    it("refuses a host whose key changed, with a warning like OpenSSH's", async () => {
      // The head node's name with the jump host's keys: every key type "changed".
      const impostor = linesFor(jumpName).map((l) => l.replace(jumpName, headName));
      const path = knownHosts(impostor);
      const error = await rejection(connect({ ...base, sshKnownHosts: path }));
      if (!HostKeyChangedError.isInstance(error)) throw error;
      const changed = error;
      expect(changed.code).toBe("SSH_HOST_KEY_CHANGED");
      expect(changed).toMatchObject({
        host: cluster.host,
        port: cluster.port,
        sshKnownHosts: path,
      });
      expect(changed.message).toContain("WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!");
      expect(changed.message).toContain("man-in-the-middle");
      expect(changed.message).toContain(`ssh-keygen -R '${headName}'`);
      expect(changed.knownAt.length).toBeGreaterThan(0);
      expect(changed.knownAt[0]).toMatch(new RegExp(`^${path}:\\d+$`));
    });

    it("refuses a host that offers none of the key types known for it", async () => {
      // A made-up DSA key: the server has no DSA host key, so no key can be checked.
      const dsa = `${headName} ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7gB00b/JmYLdrmVClpJ+f6AR7ECLCT7up1/63xhv4O1fnxqimFQ8E+4P208UewwI1VBNaFpEy9nXzrith1yrv8iIDGZ3RSAHHAAAAFQCXYFCPFSMLzLKSuYKi64QL8Fgc9QAAAIEA9+GghdabPd7LvKtcNrhXuXmUr7v6OuqC+VdMCz0HgmdRWVeOutRZT+ZxBxCBgLRJFnEj6EwoFhO3zwkyjMim4TwWeotUfI0o4KOuHiuzpnWRbqN/C/ohNWLx+2J6ASQ7zKTxvqhRkImog9/hWuWfBpKLZl6Ae1UlZAFMO/7PSSoAAACAZxpuZVdB3t2XLvhHyBaJrLPCF5RP8s4j4W89KHR9Rzjf+Kgu0wUmfXp2v3H/1f6cC9avN+SeIo8qN5cK7kIf8/GSjt3+x3W3Rb56p3qsUrO/FgEhaX6dYbmpvqqUjyMP0y9Px9ezAXSb4RRCCg4njezMpNjnr5zCG5Hm8sL1lGI=`;
      const error = await rejection(connect({ ...base, sshKnownHosts: knownHosts([dsa]) }));
      expect(error.code).toBe("SSH_HOST_KEY_CHANGED");
      expect(error.message).toContain("no longer offers a host key of the type");
    });

    it("refuses a key marked @revoked", async () => {
      const ed = linesFor(headName, "ssh-ed25519")[0] ?? "";
      const revoked = `@revoked * ${ed.split(" ").slice(1).join(" ")}`;
      const path = knownHosts([...linesFor(headName), revoked]);
      const error = await rejection(connect({ ...base, sshKnownHosts: path }));
      expect(error.code).toBe("SSH_HOST_KEY_CHANGED");
      expect(error.message).toContain("@revoked");
    });
  });

  describe("authentication", () => {
    let agent: ChildProcess | undefined;
    const agentSock = join(dir, "agent.sock");
    const encryptedKey = join(dir, "id_encrypted");
    const passphrase = "correct horse battery staple";
    const marker = `sheepdog-deploy-ssh-test-${process.pid}`;

    beforeAll(async () => {
      execFileSync("ssh-keygen", [
        "-q",
        "-t",
        "ed25519",
        "-N",
        passphrase,
        "-C",
        marker,
        "-f",
        encryptedKey,
      ]);
      // Authorise the passphrase-protected key for the test user, over our own connection.
      await using remote = await connect(base);
      const pub = readFileSync(`${encryptedKey}.pub`, "utf8");
      const added = await remote.exec("cat >> .ssh/authorized_keys", { stdin: pub });
      expect(added.code).toBe(0);
      agent = spawn("ssh-agent", ["-D", "-a", agentSock], { stdio: "ignore" });
      for (let i = 0; i < 50 && !existsSync(agentSock); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(statSync(agentSock).isSocket()).toBe(true);
    });

    afterAll(async () => {
      agent?.kill();
      await using remote = await connect(base);
      await remote.exec(
        `grep -v ${marker} .ssh/authorized_keys > .ssh/authorized_keys.tmp; mv .ssh/authorized_keys.tmp .ssh/authorized_keys`,
      );
    });

    const addToAgent = (key: string, withPassphrase: boolean): void => {
      const askpass = join(dir, "askpass.sh");
      writeFileSync(askpass, `#!/bin/sh\necho '${passphrase}'\n`, { mode: 0o700 });
      execFileSync("ssh-add", [key], {
        env: {
          ...process.env,
          SSH_AUTH_SOCK: agentSock,
          ...(withPassphrase
            ? { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", DISPLAY: ":0" }
            : {}),
        },
        stdio: "ignore",
      });
    };

    it("uses the SSH agent when it holds the key (real ssh-agent + ssh-add)", async () => {
      const { sshKeyfile: _unused, ...noKey } = base;
      // No keys in HOME and no sshKeyfile: only the agent can log in.
      const before = await withEnv({ HOME: emptyHome, SSH_AUTH_SOCK: agentSock }, () =>
        rejection(connect(noKey)),
      );
      expect(before.code).toBe("SSH_AUTH");
      expect(before.message).toContain("the SSH agent");
      addToAgent(cluster.privateKeyPath, false);
      await withEnv({ HOME: emptyHome, SSH_AUTH_SOCK: agentSock }, async () => {
        await using remote = await connect(noKey);
        expect((await remote.exec("whoami")).stdout).toBe(`${cluster.user}\n`);
      });
      execFileSync("ssh-add", ["-D"], {
        env: { ...process.env, SSH_AUTH_SOCK: agentSock },
        stdio: "ignore",
      });
    });

    it("refuses a passphrase-protected key without an agent, saying to use ssh-add", async () => {
      const error = await withEnv({ HOME: emptyHome, SSH_AUTH_SOCK: undefined }, () =>
        rejection(connect({ ...base, sshKeyfile: encryptedKey })),
      );
      expect(error.code).toBe("SSH_AUTH");
      expect(error.message).toContain("protected by a passphrase");
      expect(error.message).toContain(`ssh-add ${encryptedKey}`);
      expect(error.message).toContain("no SSH agent is running");
      expect(error.message).not.toContain(passphrase);
    });

    it("logs in with a passphrase-protected key once the agent holds it", async () => {
      addToAgent(encryptedKey, true);
      await withEnv({ HOME: emptyHome, SSH_AUTH_SOCK: agentSock }, async () => {
        await using remote = await connect({ ...base, sshKeyfile: encryptedKey });
        expect((await remote.exec("echo agent")).stdout).toBe("agent\n");
      });
      execFileSync("ssh-add", ["-D"], {
        env: { ...process.env, SSH_AUTH_SOCK: agentSock },
        stdio: "ignore",
      });
    });

    it("explains an agent full of other keys (MaxAuthTries), and IdentitiesOnly fixes it", async () => {
      const env = { ...process.env, SSH_AUTH_SOCK: agentSock };
      for (let i = 0; i < 7; i++) {
        const key = join(dir, `id_other_${i}`);
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
        execFileSync("ssh-add", [key], { env, stdio: "ignore" });
      }
      try {
        const error = await withEnv({ HOME: emptyHome, SSH_AUTH_SOCK: agentSock }, () =>
          rejection(connect(base)),
        );
        expect(error.code).toBe("SSH_AUTH");
        expect(error.message).toContain("MaxAuthTries");
        expect(error.message).toContain("IdentitiesOnly yes");
        const path = sshConfig("Host *\n  IdentitiesOnly yes\n");
        await withEnv({ HOME: emptyHome, SSH_AUTH_SOCK: agentSock }, async () => {
          await using remote = await connect({ ...base, sshConfig: path });
          expect((await remote.exec("echo only")).stdout).toBe("only\n");
          // The agent's matching key is still used when no key file can be read directly.
          addToAgent(encryptedKey, true);
          await using viaAgent = await connect({
            ...base,
            sshKeyfile: encryptedKey,
            sshConfig: path,
          });
          expect((await viaAgent.exec("echo matched")).stdout).toBe("matched\n");
        });
      } finally {
        execFileSync("ssh-add", ["-D"], { env, stdio: "ignore" });
      }
    });

    it("falls back to ~/.ssh/id_ed25519 and refuses an unauthorised key clearly", async () => {
      const home = join(dir, "home-with-key");
      mkdirSync(join(home, ".ssh"), { recursive: true });
      copyFileSync(cluster.privateKeyPath, join(home, ".ssh", "id_ed25519"));
      const { sshKeyfile: _unused, ...noKey } = base;
      await withEnv({ HOME: home, SSH_AUTH_SOCK: undefined }, async () => {
        await using remote = await connect(noKey);
        expect((await remote.exec("echo default")).stdout).toBe("default\n");
      });

      const stranger = join(dir, "id_stranger");
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger]);
      const error = await withEnv({ HOME: emptyHome, SSH_AUTH_SOCK: undefined }, () =>
        rejection(connect({ ...base, sshKeyfile: stranger })),
      );
      expect(error.code).toBe("SSH_AUTH");
      expect(error.message).toContain(`refused every key Sheepdog offered (${stranger})`);
      expect(error.message).toContain(
        `ssh-copy-id -p ${cluster.port} ${cluster.user}@${cluster.host}`,
      );
    });

    it("reports a missing keyfile as SSH_CONFIG", async () => {
      const error = await rejection(connect({ ...base, sshKeyfile: join(dir, "no-such-key") }));
      expect(error.code).toBe("SSH_CONFIG");
      expect(error.message).toContain("does not exist");
    });
  });

  describe("~/.ssh/config", () => {
    it("takes HostName, User, Port and IdentityFile (with ~) from the config, over the options", async () => {
      const home = join(dir, "config-home");
      mkdirSync(join(home, ".ssh"), { recursive: true });
      copyFileSync(cluster.privateKeyPath, join(home, ".ssh", "cluster_key"));
      const path = sshConfig(`
Host other-*
  User nobody
Host head-* !head-excluded
  HostName ${cluster.host}
  Port ${cluster.port}
  User ${cluster.user}
  IdentityFile ~/.ssh/cluster_key
Host *
  Port 1
  User wrong
`);
      await withEnv({ HOME: home, SSH_AUTH_SOCK: undefined }, async () => {
        await using remote = await connect({
          host: "head-node",
          sshPort: 9,
          sshUser: "ignored",
          sshKnownHosts: cluster.knownHostsPath,
          sshConfig: path,
        });
        expect(remote.name).toBe(`${cluster.user}@${cluster.host}:${cluster.port}`);
        expect((await remote.exec("whoami")).stdout).toBe(`${cluster.user}\n`);
        // The negated alias falls through to "Host *": port 1 refuses.
        const error = await rejection(
          connect({
            host: "head-excluded",
            sshKeyfile: cluster.privateKeyPath,
            sshKnownHosts: cluster.knownHostsPath,
            sshConfig: path,
          }),
        );
        expect(error.code).toBe("SSH_CONNECT");
      });
    });

    const jumpLog = join(cluster.privateKeyPath.replace(/[^/]+$/, ""), "sshd_jump.log");
    const jumpLogins = (): number =>
      existsSync(jumpLog)
        ? (readFileSync(jumpLog, "utf8").match(/Accepted publickey for /g) ?? []).length
        : 0;

    it("goes through a ProxyJump host (a second sshd)", async () => {
      const path = sshConfig(`
Host head-via-jump
  HostName ${cluster.host}
  Port ${cluster.port}
  User ${cluster.user}
  ProxyJump ${cluster.jump.user}@${cluster.jump.host}:${cluster.jump.port}
`);
      const before = jumpLogins();
      await using remote = await connect({ ...base, host: "head-via-jump", sshConfig: path });
      expect((await remote.exec("echo $SSH_CONNECTION")).stdout).toMatch(
        new RegExp(` ${cluster.port}\\n$`),
      );
      expect(jumpLogins()).toBeGreaterThan(before);
    });

    it("chains several ProxyJump hops", async () => {
      const hop = `${cluster.jump.user}@${cluster.jump.host}:${cluster.jump.port}`;
      const path = sshConfig(
        `Host head-via-two\n  HostName ${cluster.host}\n  Port ${cluster.port}\n  ProxyJump ${hop},${hop}\n`,
      );
      const before = jumpLogins();
      await using remote = await connect({ ...base, host: "head-via-two", sshConfig: path });
      expect((await remote.exec("echo two")).stdout).toBe("two\n");
      expect(jumpLogins()).toBeGreaterThanOrEqual(before + 2);
    });

    it("checks the jump host's key too", async () => {
      const path = sshConfig(
        `Host head-via-jump\n  HostName ${cluster.host}\n  Port ${cluster.port}\n  ProxyJump ${cluster.jump.host}:${cluster.jump.port}\n`,
      );
      const onlyHead = knownHosts(linesFor(headName));
      const error = await rejection(
        connect({ ...base, host: "head-via-jump", sshConfig: path, sshKnownHosts: onlyHead }),
      );
      expect(error).toBeInstanceOf(HostKeyUnknownError);
      expect(error).toMatchObject({ port: cluster.jump.port });
    });

    it("goes through a ProxyCommand (ssh -W %h:%p), and reports one that fails", async () => {
      const proxy = [
        "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes",
        `-i ${cluster.privateKeyPath} -o UserKnownHostsFile=${cluster.knownHostsPath}`,
        `-o StrictHostKeyChecking=yes -p ${cluster.jump.port} ${cluster.jump.user}@${cluster.jump.host}`,
        "-W %h:%p",
      ].join(" ");
      const path = sshConfig(
        `Host head-via-command\n  HostName ${cluster.host}\n  Port ${cluster.port}\n  ProxyCommand ${proxy}\nHost broken-command\n  HostName ${cluster.host}\n  ProxyCommand sh -c 'echo proxy says no >&2; exit 3'\n`,
      );
      const before = jumpLogins();
      await using remote = await connect({
        ...base,
        host: "head-via-command",
        sshConfig: path,
      });
      expect((await remote.exec("echo proxied")).stdout).toBe("proxied\n");
      expect(jumpLogins()).toBeGreaterThan(before);

      const error = await rejection(connect({ ...base, host: "broken-command", sshConfig: path }));
      expect(error.code).toBe("SSH_CONNECT");
      expect(error.message).toContain("ProxyCommand exited with code 3: proxy says no");
    });
  });

  describe("timeouts and lost connections", () => {
    let silent: Server;
    let silentPort = 0;
    beforeAll(async () => {
      // Accepts TCP connections and never says a word: an SSH server that hangs.
      silent = createServer(() => {});
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      silentPort = (silent.address() as { port: number }).port;
    });
    afterAll(() => {
      silent.close();
    });

    it("times out connecting with TIMEOUT", async () => {
      const started = Date.now();
      const error = await rejection(
        connect({
          ...base,
          sshPort: silentPort,
          connectTimeoutMs: 300,
          sshKnownHosts: knownHosts([]),
        }),
      );
      expect(error.code).toBe("TIMEOUT");
      expect(error.message).toContain("longer than 300 ms");
      expect(Date.now() - started).toBeLessThan(3000);
    });

    it("reports a refused connection as SSH_CONNECT", async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
      const port = (closed.address() as { port: number }).port;
      await new Promise((resolve) => closed.close(resolve));
      const error = await rejection(connect({ ...base, sshPort: port }));
      expect(error.code).toBe("SSH_CONNECT");
      expect(error.message).toContain("connection refused");
    });

    it("aborts connecting when the signal fires", async () => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const error = await rejection(
        connect({
          ...base,
          sshPort: silentPort,
          signal: controller.signal,
          sshKnownHosts: knownHosts([]),
        }),
      );
      expect(error.code).toBe("ABORTED");
    });

    it("notices a dead link by keepalive, then reconnects on the next call", async () => {
      // The ProxyCommand writes its pid, so the test can freeze the link with SIGSTOP.
      const pidFile = join(dir, "proxy.pid");
      const proxy = `sh -c 'echo $$ > ${pidFile}; exec ssh -F /dev/null -o BatchMode=yes -i ${cluster.privateKeyPath} -o UserKnownHostsFile=${cluster.knownHostsPath} -o StrictHostKeyChecking=yes -p ${cluster.jump.port} ${cluster.jump.user}@${cluster.jump.host} -W %h:%p'`;
      const path = sshConfig(
        `Host frozen\n  HostName ${cluster.host}\n  Port ${cluster.port}\n  ProxyCommand ${proxy}\n`,
      );
      await using remote = await connect({
        ...base,
        host: "frozen",
        sshConfig: path,
        keepaliveIntervalMs: 200,
      });
      expect((await remote.exec("echo alive")).stdout).toBe("alive\n");
      const pid = Number(readFileSync(pidFile, "utf8"));
      const running = rejection(remote.exec("sleep 30"));
      await new Promise((resolve) => setTimeout(resolve, 200));
      process.kill(pid, "SIGSTOP");
      try {
        const error = await running;
        expect(error.code).toBe("SSH_CONNECT");
        expect(error.message).toContain("was lost");
        expect(error.message).toMatch(/Keepalive/i);
      } finally {
        process.kill(pid, "SIGKILL");
        process.kill(pid, "SIGCONT");
      }
      // A new connection (and a new ProxyCommand) serves the next call.
      expect((await remote.exec("echo again")).stdout).toBe("again\n");
      expect(Number(readFileSync(pidFile, "utf8"))).not.toBe(pid);
    });
  });

  describe("an injected ssh2 client", () => {
    it("is used as it is, and left open by close()", async () => {
      const client = new Client();
      await new Promise<void>((resolve, reject) => {
        client.once("ready", () => resolve());
        client.once("error", reject);
        client.connect({
          host: cluster.host,
          port: cluster.port,
          username: cluster.user,
          privateKey: readFileSync(cluster.privateKeyPath),
        });
      });
      const remote = await connect({
        host: cluster.host,
        sshPort: cluster.port,
        sshUser: cluster.user,
        client,
      });
      expect((await remote.exec("echo injected")).stdout).toBe("injected\n");
      await remote.close();
      expect((await rejection(remote.exec("true"))).code).toBe("CLOSED");
      // Still open: the caller ends it.
      await new Promise<void>((resolve, reject) =>
        client.exec("true", (error, channel) => {
          if (error) reject(error);
          else channel.on("close", () => resolve()).resume();
        }),
      );
      client.end();
    });
  });

  describe("options", () => {
    it("rejects unknown and malformed options, suggesting the right name", async () => {
      const unknown = await rejection(connect({ ...base, port: 22 } as never));
      expect(unknown.code).toBe("CONFIG_INVALID");
      expect(unknown.message).toContain('Did you mean "sshPort"?');
      expect((await rejection(connect({ ...base, sshPort: 0 }))).code).toBe("CONFIG_INVALID");
      expect((await rejection(connect({ host: "" }))).code).toBe("CONFIG_INVALID");
    });
  });
});
