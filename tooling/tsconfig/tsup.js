/**
 * The build every Sheepdog package shares: ESM for Node 20 with declarations and source maps.
 * A package's tsup.config.ts passes only what differs, such as more entry points.
 *
 * @param {import("tsup").Options} [options]
 * @returns {import("tsup").Options}
 */
export function packageBuild(options = {}) {
  return {
    entry: ["src/index.ts"],
    format: ["esm"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "node20",
    ...options,
  };
}
