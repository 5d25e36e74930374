import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./source.js";

/** One file the page is made of. */
interface Asset {
  file: string;
  type: string;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/**
 * The package's `page` directory: found from this module, which is `src/internal/assets.ts`
 * in the repository and bundled into `dist/index.js` in the published package.
 */
function pageDirectory(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 4; up++) {
    const page = join(dir, "page");
    if (existsSync(join(page, "index.html"))) return page;
    dir = dirname(dir);
  }
  throw new SheepdogError(
    "INTERNAL",
    source,
    "The dashboard's page files are missing from its package. Reinstall @sheepdog/dashboard.",
  );
}

/**
 * The files the page is served from, by URL path: `/` (index.html), `/assets/<name>` for the
 * other files of the package's `page` directory, and `/assets/vendor/uplot.js` and `.css` read
 * from the installed uPlot package (its ES module build), not copied into this one. Only these
 * paths exist: nothing else of the disk can be asked for.
 */
export class Assets {
  readonly #byPath = new Map<string, Asset>();
  readonly #contents = new Map<string, Promise<Buffer>>();

  constructor() {
    const page = pageDirectory();
    for (const name of readdirSync(page)) {
      const type = TYPES[extname(name)];
      if (type === undefined || name.endsWith(".d.ts")) continue;
      const path = name === "index.html" ? "/" : `/assets/${name}`;
      this.#byPath.set(path, { file: join(page, name), type });
    }
    const require = createRequire(import.meta.url);
    this.#byPath.set("/assets/vendor/uplot.js", {
      file: require.resolve("uplot/dist/uPlot.esm.js"),
      type: TYPES[".js"] as string,
    });
    this.#byPath.set("/assets/vendor/uplot.css", {
      file: require.resolve("uplot/dist/uPlot.min.css"),
      type: TYPES[".css"] as string,
    });
  }

  /** The file served at `path`, or `undefined`. Files are read once and kept. */
  async get(path: string): Promise<{ body: Buffer; type: string } | undefined> {
    const asset = this.#byPath.get(path);
    if (!asset) return undefined;
    let body = this.#contents.get(asset.file);
    if (!body) {
      body = readFile(asset.file);
      void body.catch(() => this.#contents.delete(asset.file));
      this.#contents.set(asset.file, body);
    }
    return { body: await body, type: asset.type };
  }
}
