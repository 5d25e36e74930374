import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeCluster, schedulerSettings } from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { SheepdogConfig } from "./config.js";
import { listRequests, map, pyFile, shutdown } from "./index.js";

describeCluster(
  "pyFile with the modules beside it, on the test cluster's GridEngine",
  (cluster) => {
    let dir: string;
    let config: SheepdogConfig;

    function write(path: string, lines: string[]): string {
      const file = join(dir, "project", path);
      mkdirSync(join(file, ".."), { recursive: true });
      writeFileSync(file, `${lines.join("\n")}\n`);
      return file;
    }

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "sheepdog-py-file-cluster-"));
      config = {
        ...schedulerSettings(cluster, "gridengine"),
        dbfile: join(dir, "sheepdog.sqlite"),
      };
    });

    afterAll(async () => {
      await shutdown();
      rmSync(dir, { recursive: true, force: true });
    });

    it("imports helpers.py and a package from the file's directory on the nodes", async () => {
      write("helpers.py", [
        "import stats",
        "class Fit(object):",
        "    def __init__(self, slope):",
        "        self.slope = slope",
        "def fit(points):",
        "    return stats.slope(points)",
      ]);
      write("stats.py", [
        "def slope(points):",
        "    (x0, y0), (x1, y1) = points",
        "    return (y1 - y0) / (x1 - x0)",
      ]);
      write("shapes/__init__.py", ["from .square import area"]);
      write("shapes/square.py", ["def area(side):", "    return side * side"]);
      const model = write("model.py", [
        "import pickle",
        "import helpers",
        "from shapes import area",
        "def fit(points, side):",
        "    found = helpers.Fit(helpers.fit(points))",
        "    # An instance of a neighbour's class pickles (its module is importable).",
        "    pickle.dumps(found)",
        "    return [found.slope, area(side)]",
      ]);
      const results = await map(
        pyFile(model, "fit"),
        [
          [
            [
              [0, 0],
              [2, 4],
            ],
            3,
          ],
          [
            [
              [1, 1],
              [2, 4],
            ],
            5,
          ],
        ],
        config,
      );
      expect(results).toEqual([
        [2, 9],
        [3, 25],
      ]);
      // The queue may be busy with other tests' jobs.
    }, 300_000);

    it("reports a Python syntax error before anything is submitted", async () => {
      const broken = write("broken.py", ["def f(x):", "    return [x for x in]"]);
      const before = await listRequests({ dbfile: config.dbfile });
      const error = await map(pyFile(broken, "f"), [[1]], config).catch((e: unknown) => e);
      expect(error).toMatchObject({
        code: "INVALID_INPUT",
        message: expect.stringContaining(`${broken} has a Python syntax error at line 2`),
      });
      // No request was made, nothing was submitted.
      expect(await listRequests({ dbfile: config.dbfile })).toEqual(before);
    });
  },
);
