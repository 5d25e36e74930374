import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { connect } from "./index.js";

// These refusals happen before any connection is made, so they need no server.
const dir = mkdtempSync(join(tmpdir(), "sheepdog-connect-"));
const home = join(dir, "home");
mkdirSync(join(home, ".ssh"), { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const saved = { HOME: process.env.HOME, SSH_AUTH_SOCK: process.env.SSH_AUTH_SOCK };
beforeEach(() => {
  process.env.HOME = home;
  delete process.env.SSH_AUTH_SOCK;
});
afterEach(() => {
  process.env.HOME = saved.HOME;
  if (saved.SSH_AUTH_SOCK !== undefined) process.env.SSH_AUTH_SOCK = saved.SSH_AUTH_SOCK;
});

async function refusal(promise: Promise<unknown>): Promise<SheepdogError> {
  const error = await promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
  expect(SheepdogError.isInstance(error)).toBe(true);
  return error as SheepdogError;
}

const options = { host: "127.0.0.1", sshPort: 1, sshConfig: "/dev/null" };

describe("connect refuses before connecting", () => {
  it("when there is no key at all, saying how to make one", async () => {
    const error = await refusal(connect(options));
    expect(error.code).toBe("SSH_AUTH");
    expect(error.message).toContain("ssh-keygen -t ed25519");
    expect(error.message).toContain("ssh-copy-id -p 1");
    expect(error.text).toMatch(
      /: no SSH agent \(SSH_AUTH_SOCK\), no sshKeyfile, .*, or set sshKeyfile\.$/,
    );
  });

  it("when the only key has a passphrase and no agent runs, saying to use ssh-add", async () => {
    const key = join(home, ".ssh", "id_ed25519");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "secret words", "-f", key]);
    try {
      const error = await refusal(connect(options));
      expect(error.code).toBe("SSH_AUTH");
      expect(error.message).toBe(
        `[sheepdog] [deploy-ssh] No usable key for ${userInfo().username}@127.0.0.1:1. The key ${key} is protected by a passphrase, which Sheepdog never asks for, and no SSH agent is running (SSH_AUTH_SOCK is not set, or names no socket): start an agent (eval "$(ssh-agent)") and add the key to the agent with "ssh-add ${key}".`,
      );
      expect(error.message).not.toContain("secret words");
    } finally {
      rmSync(key);
      rmSync(`${key}.pub`);
    }
  });

  it("when known_hosts holds only key types it cannot check", async () => {
    const sshKeyfile = join(dir, "key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", sshKeyfile]);
    const type = "sk-ssh-ed25519@openssh.com";
    const blob = Buffer.concat([
      Buffer.from([0, 0, 0, type.length]),
      Buffer.from(type),
      Buffer.alloc(40, 7),
    ]);
    const sshKnownHosts = join(dir, "known_hosts_sk");
    writeFileSync(sshKnownHosts, `[127.0.0.1]:1 ${type} ${blob.toString("base64")}\n`);
    const error = await refusal(connect({ ...options, sshKeyfile, sshKnownHosts }));
    expect(error.code).toBe("SSH_CONFIG");
    expect(error.message).toContain(type);
  });

  it("when sshKeyfile holds a public key", async () => {
    const keyfile = join(dir, "pubkey");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyfile]);
    const error = await refusal(connect({ ...options, sshKeyfile: `${keyfile}.pub` }));
    expect(error.code).toBe("SSH_CONFIG");
    expect(error.message).toContain(`The key file ${keyfile}.pub (sshKeyfile) holds a public key.`);
  });

  it("when an option is unknown or malformed, naming the right one", async () => {
    const unknown = await refusal(connect({ ...options, ssh_keyfile: "x" } as never));
    expect(unknown.code).toBe("CONFIG_INVALID");
    expect(unknown.message).toBe(
      '[sheepdog] [deploy-ssh] Unknown option "ssh_keyfile". Did you mean "sshKeyfile"?',
    );
    for (const [old, now] of [
      ["port", "sshPort"],
      ["user", "sshUser"],
      ["keyfile", "sshKeyfile"],
      ["knownHostsPath", "sshKnownHosts"],
      ["sshConfigPath", "sshConfig"],
    ]) {
      const renamed = await refusal(connect({ host: "fear", [old as string]: "x" } as never));
      expect(renamed.text).toBe(`Unknown option "${old}". Did you mean "${now}"?`);
    }
    const far = await refusal(connect({ host: "fear", colour: "blue" } as never));
    expect(far.text).toMatch(/^Unknown option "colour"\. Known options: host, sshPort, sshUser, /);
    for (const bad of [
      { host: "two words" },
      { ...options, sshPort: 70000 },
      { ...options, connectTimeoutMs: -1 },
      { ...options, keepaliveIntervalMs: Number.NaN },
      { ...options, maxConcurrentCommands: 0 },
      { ...options, sshUser: "" },
      { ...options, sshKnownHosts: 7 as never },
    ]) {
      expect((await refusal(connect(bad))).code).toBe("CONFIG_INVALID");
    }
  });

  it("when host or sshUser is not a name, saying which option and how to write one", async () => {
    const host = await refusal(connect({ ...options, host: "fear;id" }));
    expect(host.code).toBe("CONFIG_INVALID");
    expect(host.text).toBe(
      'host "fear;id" is not a host name: it contains ";". Set host to a host name of letters, digits, ".", "-" and "_" that starts with a letter, a digit or "_", an IPv4 address, or an IPv6 address (plain or in brackets), or to such a Host alias of your SSH config.',
    );
    const user = await refusal(connect({ ...options, sshUser: "-oProxyCommand=id" }));
    expect(user.code).toBe("CONFIG_INVALID");
    expect(user.text).toBe(
      'sshUser "-oProxyCommand=id" is not a user name: it starts with "-", which a command would read as an option. Set sshUser to a user name of letters, digits, ".", "-", "_" and "@" that starts with a letter, a digit or "_".',
    );
  });

  it("takes a bracketed IPv6 address without its brackets", async () => {
    const error = await refusal(connect({ ...options, host: "[::1]", sshUser: "alice" }));
    expect(error.code).toBe("SSH_AUTH");
    expect(error.text).toMatch(/^No SSH key for alice@::1:1: /);
  });

  it("never throws synchronously", () => {
    expect(() => connect(null as never).catch(() => {})).not.toThrow();
  });
});
