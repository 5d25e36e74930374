import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { expandTokens, parseProxyJump, resolveHostConfig } from "./ssh-config.js";

const home = mkdtempSync(join(tmpdir(), "sheepdog-ssh-config-"));
mkdirSync(join(home, ".ssh"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

let n = 0;
function config(text: string): string {
  const path = join(home, ".ssh", `config-${n++}`);
  writeFileSync(path, text);
  return path;
}

describe("~/.ssh/config", () => {
  it("applies every matching Host block, the first value of each setting winning", () => {
    const path = config(`
# comment
Host fear
  HostName fear.cs.example
  User alice
  IdentityFile ~/.ssh/fear_key

Host f*
  User bob
  Port 2200
  IdentityFile ~/.ssh/other_key

Host *
  Port 22
  User carol
`);
    expect(resolveHostConfig("fear", path, { home })).toEqual({
      hostName: "fear.cs.example",
      user: "alice",
      port: 2200,
      identityFiles: ["~/.ssh/fear_key", "~/.ssh/other_key"],
    });
    expect(resolveHostConfig("fire", path, { home })).toMatchObject({ user: "bob", port: 2200 });
    expect(resolveHostConfig("water", path, { home })).toEqual({
      user: "carol",
      port: 22,
      identityFiles: [],
    });
  });

  it("honours negated patterns, case-insensitive keywords, = and quotes", () => {
    const path = config(`
HOST *.example !bad.example
  hostname="%h.internal"
  PORT=2022
Host "quoted name"
  User quoted
`);
    expect(resolveHostConfig("good.example", path, { home })).toMatchObject({
      hostName: "good.example.internal",
      port: 2022,
    });
    expect(resolveHostConfig("bad.example", path, { home })).toEqual({ identityFiles: [] });
    expect(resolveHostConfig("quoted name", path, { home })).toMatchObject({ user: "quoted" });
  });

  it("keeps ProxyCommand whole and lets the first of ProxyCommand/ProxyJump win", () => {
    const path = config(`
Host a
  ProxyCommand ssh -W %h:%p  gateway
  ProxyJump ignored
Host b
  ProxyJump alice@gw:2222,gw2
  ProxyCommand ignored
Host c
  ProxyJump none
Host *
  ProxyJump fallback
`);
    expect(resolveHostConfig("a", path, { home })).toMatchObject({
      proxyCommand: "ssh -W %h:%p  gateway",
    });
    expect(resolveHostConfig("a", path, { home }).proxyJump).toBeUndefined();
    expect(resolveHostConfig("b", path, { home })).toMatchObject({
      proxyJump: "alice@gw:2222,gw2",
    });
    expect(resolveHostConfig("c", path, { home }).proxyJump).toBe("none");
  });

  it("follows Include (relative to ~/.ssh, with globs) and Match host/user/all", () => {
    mkdirSync(join(home, ".ssh", "conf.d"), { recursive: true });
    writeFileSync(join(home, ".ssh", "conf.d", "10-fear.conf"), "Host fear\n  Port 3333\n");
    writeFileSync(join(home, ".ssh", "conf.d", "20-all.conf"), "Host *\n  User included\n");
    const path = config(`
Include conf.d/*.conf
Match host fear.example user included
  IdentityFile ~/.ssh/matched
Match exec "true"
  IdentityFile ~/.ssh/never
Match all
  ConnectTimeout 7
`);
    const fear = resolveHostConfig("fear", path, { home });
    expect(fear).toMatchObject({ port: 3333, user: "included", connectTimeoutSeconds: 7 });
    expect(fear.identityFiles).toEqual([]);
    const config2 = config(`
Host fear
  HostName fear.example
  User included
Match host fear.example user included
  IdentityFile ~/.ssh/matched
`);
    expect(resolveHostConfig("fear", config2, { home }).identityFiles).toEqual(["~/.ssh/matched"]);
  });

  it("reads IdentitiesOnly", () => {
    const path = config("Host fear\n  IdentitiesOnly yes\nHost *\n  IdentitiesOnly no\n");
    expect(resolveHostConfig("fear", path, { home }).identitiesOnly).toBe(true);
    expect(resolveHostConfig("other", path, { home }).identitiesOnly).toBe(false);
    const bad = config("Host *\n  IdentitiesOnly maybe\n");
    expect(() => resolveHostConfig("x", bad, { home })).toThrow(/IdentitiesOnly "maybe"/);
  });

  it("treats a missing file as empty and reports bad lines with file and line", () => {
    expect(resolveHostConfig("fear", join(home, "missing"), { home })).toEqual({
      identityFiles: [],
    });
    const bad = config("Host fear\n  Port nope\n");
    expect(() => resolveHostConfig("fear", bad, { home })).toThrow(
      expect.objectContaining({ code: "SSH_CONFIG", message: expect.stringContaining("line 2") }),
    );
    const unbalanced = config('Host fear\n  User "alice\n');
    expect(() => resolveHostConfig("fear", unbalanced, { home })).toThrow(/unbalanced quotes/);
  });

  it("expands tokens and refuses unknown ones", () => {
    const tokens = { host: "fear.example", originalHost: "fear", port: 2222, user: "alice" };
    expect(expandTokens("ssh -W %h:%p %r@gw # %n %%", tokens, "ProxyCommand", home)).toBe(
      "ssh -W fear.example:2222 alice@gw # fear %",
    );
    expect(expandTokens("%d/.ssh/id", tokens, "IdentityFile", home)).toBe(`${home}/.ssh/id`);
    expect(() => expandTokens("%C", tokens, "ProxyCommand", home)).toThrow(/%C/);
  });

  it("refuses a HostName or User that is not a name, naming the file and line", () => {
    const path = config(
      'Host evil\n  HostName "x$(touch /tmp/m)"\nHost user\n  User u;id\nHost ok\n  HostName %h.example\n  User alice\n',
    );
    expect(() => resolveHostConfig("evil", path, { home })).toThrow(
      expect.objectContaining({
        code: "CONFIG_INVALID",
        message: `[sheepdog] [deploy-ssh] HostName "x$(touch /tmp/m)" (${path} line 2) is not a host name: it contains "$". Fix the HostName line of that SSH config: use a host name of letters, digits, ".", "-" and "_" that starts with a letter, a digit or "_", an IPv4 address, or an IPv6 address (plain or in brackets).`,
      }),
    );
    expect(() => resolveHostConfig("user", path, { home })).toThrow(
      expect.objectContaining({
        code: "CONFIG_INVALID",
        message: expect.stringContaining(`User "u;id" (${path} line 4) is not a user name`),
      }),
    );
    expect(resolveHostConfig("ok", path, { home })).toMatchObject({
      hostName: "ok.example",
      user: "alice",
    });
  });

  it("parses ProxyJump hops", () => {
    expect(parseProxyJump("alice@gw:2222,gw2,ssh://bob@[::1]:22")).toEqual([
      { host: "gw", user: "alice", port: 2222 },
      { host: "gw2" },
      { host: "::1", user: "bob", port: 22 },
    ]);
    expect(() => parseProxyJump("gw:99999")).toThrow(/not a port/);
    expect(() => parseProxyJump("")).toThrow(/ProxyJump/);
    expect(() => parseProxyJump("gw,x$(id)")).toThrow(
      expect.objectContaining({
        code: "CONFIG_INVALID",
        message: expect.stringContaining('ProxyJump host "x$(id)" is not a host name'),
      }),
    );
    expect(() => parseProxyJump("u`id`@gw")).toThrow(
      expect.objectContaining({
        code: "CONFIG_INVALID",
        message: expect.stringContaining('ProxyJump user "u`id`" is not a user name'),
      }),
    );
  });
});
