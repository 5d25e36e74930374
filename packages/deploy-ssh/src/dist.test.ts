import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const dist = new URL("../dist/index.js", import.meta.url);

describe("the built package", () => {
  it("loads in plain Node (not through vitest) and exports connect and the host key errors", () => {
    // A separate node process: vitest's loader forgives ESM/CommonJS mistakes that Node does not.
    const keys = execFileSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const m = await import(${JSON.stringify(dist.href)}); console.log(Object.keys(m).sort().join(","), typeof m.connect);`,
      ],
      { encoding: "utf8", cwd: fileURLToPath(new URL("..", import.meta.url)) },
    );
    expect(keys.trim()).toBe(
      "HostKeyChangedError,HostKeyError,HostKeyUnknownError,connect function",
    );
  });
});
