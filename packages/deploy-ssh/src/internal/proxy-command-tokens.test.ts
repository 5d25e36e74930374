import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ProxyCommandStream } from "./proxy-command.js";
import { expandProxyCommand } from "./proxy-command-tokens.js";
import type { TokenValues } from "./ssh-config.js";

const dir = mkdtempSync(join(tmpdir(), "sheepdog-proxy-tokens-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const marker = join(dir, "marker");
afterEach(() => rmSync(marker, { force: true }));

const safe: TokenValues = { host: "fear.example", originalHost: "fear", port: 2222, user: "alice" };

/** Values that run `touch <marker>` if the shell reads them as syntax. */
const hostile: TokenValues = {
  host: `x$(touch ${marker})`,
  originalHost: `x;touch ${marker}`,
  port: 22,
  user: `u\`touch ${marker}\`'"\\ $HOME`,
};

/** Runs a ProxyCommand as Sheepdog does (`/bin/sh -c "exec ..."`) and returns its stdout. */
function runProxyCommand(command: string): Promise<string> {
  const stream = new ProxyCommandStream(command);
  let out = "";
  stream.on("data", (chunk: Buffer) => {
    out += chunk.toString("utf8");
  });
  return new Promise((resolve) => stream.once("proxy-exit", () => resolve(out)));
}

/** The words a shell makes of `printf '%s\n' <expanded>`, one per line. */
async function words(command: string, tokens: TokenValues, home = "/home/me"): Promise<string[]> {
  const expanded = expandProxyCommand(`printf '%%s\\n' ${command}`, tokens, home);
  return (await runProxyCommand(expanded)).split("\n").slice(0, -1);
}

describe("expandProxyCommand", () => {
  it("puts safe values as they are, as OpenSSH does, and keeps %%", () => {
    expect(expandProxyCommand("ssh -W %h:%p %r@gw # %n %% '%h' \"%h\"", safe, "/home/me")).toBe(
      "ssh -W fear.example:2222 alice@gw # fear % 'fear.example' \"fear.example\"",
    );
    expect(expandProxyCommand("nc %h %p", { ...safe, host: "::1" }, "/h")).toBe("nc ::1 2222");
    expect(expandProxyCommand("sh -c 'nc $(echo %h) %p'", safe, "/h")).toBe(
      "sh -c 'nc $(echo fear.example) 2222'",
    );
  });

  it("quotes any other value so that it stays one word, outside and inside quotes", async () => {
    expect(expandProxyCommand("nc %h %p", hostile, "/h")).toBe(`nc 'x$(touch ${marker})' 22`);
    const values = [hostile.host, hostile.originalHost, hostile.user];
    expect(await words("%h %n %r", hostile)).toEqual(values);
    expect(await words('"%h" "%n" "%r"', hostile)).toEqual(values);
    expect(await words("'%h' '%n' '%r'", hostile)).toEqual(values);
    expect(await words("pre%h:%p \"pre %r post\" 'a%nb'", hostile)).toEqual([
      `pre${hostile.host}:22`,
      `pre ${hostile.user} post`,
      `a${hostile.originalHost}b`,
    ]);
    expect(await words("%d/.ssh '%d' \"%d\"", safe, "/home/my dir;$(x)")).toEqual([
      "/home/my dir;$(x)/.ssh",
      "/home/my dir;$(x)",
      "/home/my dir;$(x)",
    ]);
    expect(existsSync(marker)).toBe(false);
  });

  it("would run the hostile values if they were put in as they are (the attack is real)", () => {
    const raw = `printf '%s\\n' ${hostile.host} "${hostile.host}"`;
    execFileSync("/bin/sh", ["-c", raw], { stdio: "ignore" });
    expect(existsSync(marker)).toBe(true);
  });

  it("refuses a value that needs quoting where the shell's quoting cannot be followed", () => {
    for (const command of [
      "nc \\%h 22",
      "nc $%h 22",
      'sh -c "nc $(echo %h) 22"',
      "nc `echo %h` 22",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
      "nc ${X:-%h} 22",
      "nc $'%h' 22",
    ]) {
      expect(() => expandProxyCommand(command, hostile, "/h"), command).toThrow(
        expect.objectContaining({
          code: "SSH_CONFIG",
          message: expect.stringContaining("ProxyCommand puts %h (here "),
        }),
      );
      // A safe word needs no quoting, so the same lines work with it.
      expect(() => expandProxyCommand(command, safe, "/h")).not.toThrow();
    }
    expect(existsSync(marker)).toBe(false);
  });

  it("follows escapes and quotes before the token", async () => {
    // The escaped quote opens no quote, so %h stands outside quotes; in '...', \ is plain.
    expect(await words(`\\" %h 'a\\' %r`, hostile)).toEqual([
      '"',
      hostile.host,
      "a\\",
      hostile.user,
    ]);
    expect(await words(`"a\\"b %h"`, hostile)).toEqual([`a"b ${hostile.host}`]);
    expect(existsSync(marker)).toBe(false);
  });

  it("refuses unknown tokens and leaves a trailing % alone", () => {
    expect(() => expandProxyCommand("nc %C", safe, "/h")).toThrow(/"%C", which Sheepdog does not/);
    expect(expandProxyCommand("echo 100%", safe, "/h")).toBe("echo 100%");
  });
});
