import type { Options } from "tsup";

/**
 * The build every Sheepdog package shares: ESM for Node 20 with declarations and source maps.
 * A package's tsup.config.ts passes only what differs, such as more entry points.
 */
export function packageBuild(options?: Options): Options;
