import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { didYouMean, shellQuote } from "./text.js";

describe("shellQuote", () => {
  it("leaves plain words bare and single-quotes the rest", () => {
    expect(shellQuote("fear")).toBe("fear");
    expect(shellQuote("~/.ssh/known_hosts")).toBe("'~/.ssh/known_hosts'");
    expect(shellQuote("user@host:22,a=b+c%d")).toBe("user@host:22,a=b+c%d");
    expect(shellQuote("")).toBe("''");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote("a b")).toBe("'a b'");
  });

  it("gives the shell back exactly the word", () => {
    const words = ["", "plain", "it's", "$(rm -rf /)", "a\nb", "'''", "*.o*", "-n", "\\"];
    const script = words.map((word) => `printf '%s\\0' ${shellQuote(word)}`).join("; ");
    const out = execFileSync("/bin/sh", ["-c", script], { encoding: "utf8" });
    expect(out.split("\0").slice(0, -1)).toEqual(words);
  });
});

describe("didYouMean", () => {
  const options = ["host", "sshPort", "sshUser", "sshKeyfile", "sshKnownHosts"];

  it("finds a near spelling, ignoring case, _ and -", () => {
    expect(didYouMean("sshPrt", options)).toBe("sshPort");
    expect(didYouMean("ssh_known_hosts", options)).toBe("sshKnownHosts");
    expect(didYouMean("SSH-USER", options)).toBe("sshUser");
    expect(didYouMean("sshkeyfle", options)).toBe("sshKeyfile");
  });

  it("suggests nothing when no candidate is near", () => {
    expect(didYouMean("colour", options)).toBeUndefined();
    expect(didYouMean("foo", ["host"])).toBeUndefined();
    expect(didYouMean("x", options)).toBeUndefined();
    expect(didYouMean("anything", [])).toBeUndefined();
  });

  it("prefers an alias, matched like a candidate", () => {
    expect(didYouMean("knownHostsPath", options, { knownHostsPath: "sshKnownHosts" })).toBe(
      "sshKnownHosts",
    );
    expect(didYouMean("known_hosts_path", options, { knownHostsPath: "sshKnownHosts" })).toBe(
      "sshKnownHosts",
    );
  });

  it("takes the first of equally near candidates", () => {
    expect(didYouMean("ab", ["ax", "xb"])).toBe("ax");
  });
});
