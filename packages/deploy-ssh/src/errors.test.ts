import { SheepdogError } from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import { HostKeyChangedError, HostKeyError, HostKeyUnknownError } from "./errors.js";

const facts = { host: "fear", port: 22, sshKnownHosts: "/home/me/.ssh/known_hosts" };

describe("the host key errors", () => {
  const unknown = new HostKeyUnknownError(
    { ...facts, keyType: "ssh-ed25519", keyscanCommand: "ssh-keyscan -p 22 fear" },
    "Host key for fear:22 is not in ~/.ssh/known_hosts.",
  );
  const changed = new HostKeyChangedError(
    { ...facts, knownAt: ["/home/me/.ssh/known_hosts:3"] },
    "The host key of fear:22 changed.",
  );

  it("carry their facts as fields and as detail, apart from the message", () => {
    expect(unknown).toMatchObject({
      code: "SSH_HOST_KEY_UNKNOWN",
      source: "deploy-ssh",
      name: "HostKeyUnknownError",
      host: "fear",
      port: 22,
      sshKnownHosts: facts.sshKnownHosts,
      keyType: "ssh-ed25519",
      keyscanCommand: "ssh-keyscan -p 22 fear",
      text: "Host key for fear:22 is not in ~/.ssh/known_hosts.",
    });
    expect(unknown.detail).toEqual({
      ...facts,
      keyType: "ssh-ed25519",
      keyscanCommand: "ssh-keyscan -p 22 fear",
    });
    expect(changed.detail).toEqual({ ...facts, knownAt: ["/home/me/.ssh/known_hosts:3"] });
    expect(changed.fingerprint).toBeUndefined();
  });

  it("are told apart by isInstance, also for copies of the package", () => {
    expect([
      SheepdogError.isInstance(unknown),
      HostKeyError.isInstance(unknown),
      HostKeyUnknownError.isInstance(unknown),
      HostKeyChangedError.isInstance(unknown),
    ]).toEqual([true, true, true, false]);
    expect(HostKeyChangedError.isInstance(changed)).toBe(true);
    expect(HostKeyUnknownError.isInstance(changed)).toBe(false);
    expect(HostKeyError.isInstance(new SheepdogError("SSH_CONNECT", "deploy-ssh", "x"))).toBe(
      false,
    );
    const fromAnotherCopy = {
      [Symbol.for("sheepdog.error")]: true,
      [Symbol.for("sheepdog.error.deploy-ssh.HostKeyUnknownError")]: true,
    };
    expect(HostKeyUnknownError.isInstance(fromAnotherCopy)).toBe(true);
  });
});
