import { describe, expect, it } from "vitest";
import {
  checkHostName,
  checkUserName,
  hostNameProblem,
  unbracketed,
  userNameProblem,
} from "./names.js";

describe("host names", () => {
  it("accepts names, aliases, IPv4 and IPv6 addresses", () => {
    for (const host of [
      "fear",
      "fear.cs.example.org",
      "head-node_2",
      "_gateway",
      "10.0.0.1",
      "::1",
      "[::1]",
      "fe80::1%eth0",
      "[2001:db8::2:1]",
      "::ffff:192.0.2.1",
    ]) {
      expect(hostNameProblem(host), host).toBeUndefined();
    }
  });

  it("refuses shell characters, whitespace, control characters and a leading -", () => {
    expect(hostNameProblem("x$(touch /tmp/m)")).toBe('contains "$"');
    expect(hostNameProblem("x;touch /tmp/m")).toBe('contains ";"');
    expect(hostNameProblem("x`id`")).toBe('contains "`"');
    expect(hostNameProblem("a|b")).toBe('contains "|"');
    expect(hostNameProblem("a&b")).toBe('contains "&"');
    expect(hostNameProblem("a'b")).toBe(`contains "'"`);
    expect(hostNameProblem("a>b")).toBe('contains ">"');
    expect(hostNameProblem("a*")).toBe('contains "*"');
    expect(hostNameProblem("a b")).toBe("contains whitespace");
    expect(hostNameProblem("a\tb")).toBe("contains a control character (U+0009)");
    expect(hostNameProblem("a\nb")).toBe("contains a control character (U+000A)");
    expect(hostNameProblem("a\u007fb")).toBe("contains a control character (U+007F)");
    expect(hostNameProblem("-oProxyCommand=id")).toBe(
      'starts with "-", which a command would read as an option',
    );
    expect(hostNameProblem("")).toBe("is empty");
    expect(hostNameProblem("u@fear")).toBe('contains "@"');
    expect(hostNameProblem("fëar")).toBe('contains "ë"');
  });

  it("refuses what is neither a name nor an address", () => {
    for (const host of [".fear", "[fear]", "[::1", "a:b:g", "%eth0", "::1%"]) {
      expect(hostNameProblem(host), host).toBe("is neither a name nor an IPv4 or IPv6 address");
    }
  });

  it("takes the brackets off an IPv6 address only", () => {
    expect(unbracketed("[::1]")).toBe("::1");
    expect(unbracketed("[fear]")).toBe("[fear]");
    expect(unbracketed("fear")).toBe("fear");
  });
});

describe("user names", () => {
  it("accepts login names", () => {
    for (const user of ["alice", "a.b-c_d", "_svc", "42", "alice@EXAMPLE.ORG"]) {
      expect(userNameProblem(user), user).toBeUndefined();
    }
  });

  it("refuses shell characters, whitespace, control characters and a leading - . or @", () => {
    expect(userNameProblem("u$(touch /tmp/m)")).toBe('contains "$"');
    expect(userNameProblem("u;id")).toBe('contains ";"');
    expect(userNameProblem("u id")).toBe("contains whitespace");
    expect(userNameProblem("u\u0000")).toBe("contains a control character (U+0000)");
    expect(userNameProblem("u\\")).toBe('contains "\\"');
    expect(userNameProblem("-l")).toBe('starts with "-", which a command would read as an option');
    expect(userNameProblem(".hidden")).toBe('does not start with a letter, a digit or "_"');
    expect(userNameProblem("@realm")).toBe('does not start with a letter, a digit or "_"');
    expect(userNameProblem("")).toBe("is empty");
  });
});

describe("checkHostName and checkUserName", () => {
  it("throw CONFIG_INVALID naming the option, the value, where it was read and the fix", () => {
    expect(() =>
      checkHostName("x;y", { option: "HostName", where: "/c line 3", fix: "Fix it." }),
    ).toThrow(
      expect.objectContaining({
        code: "CONFIG_INVALID",
        message:
          '[sheepdog] [deploy-ssh] HostName "x;y" (/c line 3) is not a host name: it contains ";". Fix it.',
      }),
    );
    expect(() => checkUserName("u$", { option: "sshUser", fix: "Set sshUser." })).toThrow(
      expect.objectContaining({
        code: "CONFIG_INVALID",
        message:
          '[sheepdog] [deploy-ssh] sshUser "u$" is not a user name: it contains "$". Set sshUser.',
      }),
    );
    expect(() => checkHostName("fear", { option: "host", fix: "" })).not.toThrow();
    expect(() => checkUserName("alice", { option: "sshUser", fix: "" })).not.toThrow();
  });
});
