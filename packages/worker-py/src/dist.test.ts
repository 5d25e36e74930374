import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

describe("the built package", () => {
  it("exports the worker from dist, reading the shipped python file", async () => {
    const dist = await import("../dist/index.js");
    expect(dist.workerPath).toMatch(/worker-py\/python\/sheepdog_worker\.py$/);
    expect(dist.workerSource).toBe(readFileSync(dist.workerPath, "utf8"));
    const program = dist.workerProgram({
      url: "http://h:1",
      token: "t",
      request: 1,
      pickleProtocol: 4,
      retryWindowSeconds: 1,
    });
    expect(program.endsWith("sys.exit(main(json.loads(")).toBe(false);
    expect(program).toContain('sys.exit(main(json.loads("{');
    expect(typeof dist.parseReportLines).toBe("function");
  });

  it("ships the worker file", () => {
    const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    expect(manifest.files).toContain("python/sheepdog_worker.py");
  });
});
