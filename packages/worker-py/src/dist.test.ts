import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const distUrl = new URL("../dist/index.js", import.meta.url).href;

describe("the built package", () => {
  it("exports the worker from dist, reading the shipped python file", async () => {
    const dist = await import("../dist/index.js");
    expect(dist.workerPath).toMatch(/worker-py\/python\/sheepdog_worker\.py$/);
    expect(dist.workerSource()).toBe(readFileSync(dist.workerPath, "utf8"));
    const program = dist.workerProgram({
      url: "http://h:1",
      tokenFile: "t.token",
      request: 1,
      pickleProtocol: 4,
      retryWindowSeconds: 1,
    });
    expect(program.endsWith("sys.exit(main(json.loads(")).toBe(false);
    expect(program).toContain('sys.exit(main(json.loads("{');
    expect(typeof dist.parseReportLines).toBe("function");
  });

  it("reads nothing at import, and the worker file once however often it is used", () => {
    // A fresh Node process counts the reads of sheepdog_worker.py through fs.readFileSync.
    const script = `
      import fs from "node:fs";
      import { syncBuiltinESMExports } from "node:module";
      const read = fs.readFileSync;
      let reads = 0;
      fs.readFileSync = (path, ...rest) => {
        if (String(path).endsWith("sheepdog_worker.py")) reads += 1;
        return read(path, ...rest);
      };
      syncBuiltinESMExports();
      const worker = await import(${JSON.stringify(distUrl)});
      const atImport = reads;
      const launch = { url: "http://h:1", tokenFile: "t.token", request: 1, pickleProtocol: 4, retryWindowSeconds: 1 };
      worker.workerProgram(launch);
      worker.workerSource();
      worker.workerProgram(launch);
      console.log(JSON.stringify([atImport, reads]));
    `;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script]).toString();
    expect(JSON.parse(out)).toEqual([0, 1]);
  });

  it("exports the spool tool from dist, reading the shipped python file", async () => {
    const dist = await import("../dist/index.js");
    expect(dist.spoolPath).toMatch(/worker-py\/python\/sheepdog_spool\.py$/);
    expect(dist.spoolSource()).toBe(readFileSync(dist.spoolPath, "utf8"));
    expect(dist.spoolToolCommand("list", [".sheepdog"])).toMatch(
      /^exec python3 -c '# Sheepdog spool/,
    );
    const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    expect(manifest.files).toContain("python/sheepdog_spool.py");
  });

  it("ships the worker file", () => {
    const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    expect(manifest.files).toContain("python/sheepdog_worker.py");
  });
});
