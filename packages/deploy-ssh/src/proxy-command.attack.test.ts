import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ConnectOptions } from "./index.js";
import { connect } from "./index.js";

/*
 * The attack of OpenSSH's CVE-2023-51385: a host or user name that another user chose (a
 * host stored in a shared file, an SSH config in a shared directory) reaches the %h, %n or %r
 * of the victim's own ProxyCommand, and the shell runs what the name holds. Every attempt
 * here would create `marker` if a name were put into the command as it is.
 */
const dir = mkdtempSync(join(tmpdir(), "sheepdog-proxy-attack-"));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A directory every user may write to, as /tmp is: where the other user leaves files. */
const shared = join(dir, "shared");
mkdirSync(shared);
chmodSync(shared, 0o1777);

const marker = join(dir, "pwned");
/** What the ProxyCommand printed: one line per word it was given. */
const proxyWords = join(dir, "proxy-words");
const key = join(dir, "id_ed25519");
execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
const knownHosts = join(dir, "known_hosts");
writeFileSync(knownHosts, "");

/** The victim's own config: it includes the shared directory and proxies every host. */
const victimConfig = join(dir, "config");
writeFileSync(
  victimConfig,
  `Include ${shared}/*.conf\nHost *\n  ProxyCommand printf '%%s\\n' %h "%n" '%r' > ${proxyWords}\n`,
);

const victim = { sshConfig: victimConfig, sshKeyfile: key, sshKnownHosts: knownHosts };

/**
 * Writes a file as the other user: `nobody` when the tests run as root, else (no second
 * account to be) as ourselves; either way the file's contents are the attacker's.
 */
function writeAsOtherUser(path: string, text: string): void {
  if (process.getuid?.() === 0) {
    execFileSync("runuser", ["-u", "nobody", "--", "tee", path], {
      input: text,
      stdio: ["pipe", "ignore", "inherit"],
    });
    expect(statSync(path).uid).not.toBe(0);
  } else {
    writeFileSync(path, text);
  }
}

async function refusal(promise: Promise<unknown>): Promise<SheepdogError> {
  const error = await promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
  expect(SheepdogError.isInstance(error), String(error)).toBe(true);
  return error as SheepdogError;
}

beforeEach(() => {
  rmSync(marker, { force: true });
  rmSync(proxyWords, { force: true });
});
afterEach(() => {
  expect(existsSync(marker), "a name ran as shell code").toBe(false);
});

describe("a ProxyCommand meets names another user wrote", () => {
  it("refuses a host or user read from the other user's file before any command runs", async () => {
    const attempts: Pick<ConnectOptions, "host" | "sshUser">[] = [
      { host: `x$(touch ${marker})` },
      { host: `x;touch ${marker}` },
      { host: `x\`touch ${marker}\`` },
      { host: `x|touch ${marker}` },
      { host: `x&&touch ${marker}` },
      { host: `x\ntouch ${marker}` },
      { host: `-oProxyCommand=touch ${marker}` },
      { host: "fear", sshUser: `u$(touch ${marker})` },
      { host: "fear", sshUser: `u;touch ${marker}` },
      { host: "fear", sshUser: `-oProxyCommand=touch ${marker}` },
    ];
    const stored = join(shared, "hosts.json");
    writeAsOtherUser(stored, JSON.stringify(attempts));
    const read = JSON.parse(readFileSync(stored, "utf8")) as typeof attempts;
    for (const attempt of read) {
      const error = await refusal(connect({ ...victim, ...attempt, connectTimeoutMs: 5000 }));
      const [option, value] =
        attempt.sshUser === undefined ? ["host", attempt.host] : ["sshUser", attempt.sshUser];
      expect(error.code).toBe("CONFIG_INVALID");
      expect(error.text).toContain(`${option} ${JSON.stringify(value)} is not a`);
      expect(existsSync(proxyWords), "the ProxyCommand ran").toBe(false);
    }
  });

  it("refuses a HostName, User or ProxyJump host from the other user's config file", async () => {
    writeAsOtherUser(
      join(shared, "evil.conf"),
      [
        `Host via-hostname\n  HostName "x$(touch ${marker})"`,
        `Host via-user\n  User "u;touch ${marker}"`,
        `Host via-jump\n  ProxyJump "j\`touch ${marker}\`"`,
        "",
      ].join("\n"),
    );
    const cases = [
      ["via-hostname", `HostName "x$(touch ${marker})" (${shared}/evil.conf line 2)`],
      ["via-user", `User "u;touch ${marker}" (${shared}/evil.conf line 4)`],
      ["via-jump", `ProxyJump host "j\`touch ${marker}\`" is not a host name`],
    ] as const;
    for (const [host, message] of cases) {
      const error = await refusal(connect({ ...victim, host, connectTimeoutMs: 5000 }));
      expect(error.code).toBe("CONFIG_INVALID");
      expect(error.text).toContain(message);
      expect(existsSync(proxyWords), "the ProxyCommand ran").toBe(false);
    }
  });

  it("quotes what passes the checks: a home directory with shell syntax is one word", async () => {
    // A directory name holds no "/": the marker's path comes from the environment.
    const home = join(dir, 'home $(touch "$ATTACK_MARKER");touch "$ATTACK_MARKER"');
    mkdirSync(home);
    const config = join(dir, "config-home");
    // fd 3 holds the connection's pipe open until printf has written and exited: the client
    // ends a proxy whose pipe closes, and would race printf if the redirect closed it first.
    writeFileSync(
      config,
      `Host *\n  ProxyCommand printf '%%s\\n' %d "%d" '%d' %h %r %n 3>&1 > ${proxyWords}\n`,
    );
    const saved = process.env.HOME;
    process.env.HOME = home;
    process.env.ATTACK_MARKER = marker;
    try {
      const error = await refusal(
        connect({ ...victim, sshConfig: config, host: "fear", sshUser: "alice" }),
      );
      expect(error.code).toBe("SSH_CONNECT");
    } finally {
      process.env.HOME = saved;
      delete process.env.ATTACK_MARKER;
    }
    expect(readFileSync(proxyWords, "utf8")).toBe(`${home}\n${home}\n${home}\nfear\nalice\nfear\n`);
  });
});
