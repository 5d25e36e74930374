import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { PidProbe, pidLine, pidPattern, withoutPidLine } from "./pid-line.js";

describe("the pid line", () => {
  it("is printed by a POSIX shell as its own pid", () => {
    const stdout = execFileSync("/bin/sh", ["-c", `${pidLine}\necho $$ 1>&2`], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    expect(stdout).toBe("");
    const out = execFileSync("/bin/sh", ["-c", `exec 2>&1\n${pidLine}\necho $$`], {
      encoding: "utf8",
    });
    const match = pidPattern.exec(out);
    expect(match?.[2]).toBe(out.trim().split("\n")[1]);
  });

  it("is found after startup noise and removed once, leaving the rest intact", () => {
    const noise = "bashrc: module not found\n";
    const text = `${noise}sheepdog-pid 123\nreal error\nsheepdog-pid 123\n`;
    const match = pidPattern.exec(text);
    expect(match?.[2]).toBe("123");
    expect(withoutPidLine(text, "sheepdog-pid 123\n")).toBe(
      `${noise}real error\nsheepdog-pid 123\n`,
    );
    expect(withoutPidLine("sheepdog-pid 9\nx", "sheepdog-pid 9\n")).toBe("x");
    expect(withoutPidLine("no line", undefined)).toBe("no line");
    expect(pidPattern.exec("xsheepdog-pid 5\n")).toBeNull();
  });

  it("is found by the probe across chunks, and not after the first 64 KiB", () => {
    const probe = new PidProbe();
    for (const chunk of ["noise\nsheepdog-p", "id 4", "2\nmore"]) probe.feed(Buffer.from(chunk));
    expect([probe.pid, probe.line]).toEqual([42, "sheepdog-pid 42\n"]);
    const late = new PidProbe();
    late.feed(Buffer.alloc(64 * 1024 + 1, "x"));
    late.feed(Buffer.from("\nsheepdog-pid 7\n"));
    expect([late.pid, late.line]).toEqual([undefined, undefined]);
  });
});
