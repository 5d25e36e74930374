import { describe } from "vitest";
import type { Remote } from "../remote.js";
import { describeExec } from "./remote-contract/exec.js";
import { describeFiles } from "./remote-contract/files.js";
import { describeLifecycle } from "./remote-contract/lifecycle.js";
import { remoteSuite } from "./remote-contract/suite.js";
import { describeTunnels } from "./remote-contract/tunnel.js";
import type { RemoteFactory } from "./remote-contract/types.js";

export type { RemoteFactory } from "./remote-contract/types.js";

/** Options of {@link describeRemoteContract}. */
export interface RemoteContractOptions {
  /** The size of the large stdout/stderr/stdin/file tests, in bytes. @default 4 MiB */
  largeBytes?: number;
  /** Timeout of each test, in milliseconds. @default 30_000 */
  timeout?: number;
}

/**
 * The conformance suite for {@link Remote}: command semantics (exit codes, signals, stdin,
 * stderr, large output, concurrency, timeouts, abort), uploads with modes, readFile, mkdir -p,
 * relative paths, and use after close. Run it against your own Remote in one line:
 *
 * ```ts
 * import { describeRemoteContract } from "@sheepdog/contracts/testing";
 * describeRemoteContract("my-remote", () => myRemote());
 * ```
 *
 * It works in a fresh directory (`.sheepdog-remote-contract-<random>`) under the remote's home
 * and removes it afterwards. The remote needs a POSIX shell with `cat`, `head`, `tr`, `stat`,
 * `sleep` and `rm`.
 */
export function describeRemoteContract(
  name: string,
  factory: RemoteFactory,
  options: RemoteContractOptions = {},
): void {
  const largeBytes = options.largeBytes ?? 4 * 1024 * 1024;
  const timeout = options.timeout ?? 30_000;

  describe(`Remote contract: ${name}`, () => {
    const suite = remoteSuite(factory, { timeout, largeBytes });
    describeExec(suite);
    describeFiles(suite);
    describeLifecycle(suite);
    describeTunnels(suite);
  });
}
