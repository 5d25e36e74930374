import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

it("the built package loads in plain Node and serves its page and uPlot from where it is installed", () => {
  const dir = mkdtempSync(join(tmpdir(), "sheepdog-dashboard-dist-"));
  try {
    // A separate process importing the package by its name: the page's files are found from
    // dist/index.js, not from the sources that vitest runs.
    const script = `
      const { createDashboard, ...rest } = await import("@sheepdog/dashboard");
      const { sqliteStore } = await import("@sheepdog/store-sqlite");
      const store = sqliteStore({ dbfile: ${JSON.stringify(join(dir, "s.sqlite"))} });
      const dashboard = await createDashboard({ store });
      const token = new URL(dashboard.url).searchParams.get("token");
      const statuses = [];
      for (const path of ["/", "/assets/app.js", "/assets/style.css", "/assets/vendor/uplot.js", "/api/requests"]) {
        const response = await fetch(dashboard.origin + path, { headers: { authorization: "Bearer " + token } });
        statuses.push(path + " " + response.status);
      }
      await dashboard.close();
      await store.close();
      console.log(JSON.stringify({ exports: Object.keys(rest), statuses }));
    `;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      cwd: fileURLToPath(new URL("..", import.meta.url)),
    });
    expect(JSON.parse(out)).toEqual({
      exports: [],
      statuses: [
        "/ 200",
        "/assets/app.js 200",
        "/assets/style.css 200",
        "/assets/vendor/uplot.js 200",
        "/api/requests 200",
      ],
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
