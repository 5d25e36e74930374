import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll } from "vitest";
import type { Remote } from "../../remote.js";
import type { RemoteFactory } from "./types.js";

/** What the groups of the Remote suite share. */
export interface RemoteSuite {
  /**
   * The suite's directory, relative to the remote's home
   * (`.sheepdog-remote-contract-<random>`): made before the first test, removed after the last.
   */
  readonly dir: string;
  /** Opens a remote. The suite closes it after the test (the first one after the suite). */
  open(): Promise<Remote>;
  /** Timeout of each test, in milliseconds. */
  readonly timeout: number;
  /** The size of the large stdout/stderr/stdin/file tests, in bytes. */
  readonly largeBytes: number;
}

/**
 * Registers the hooks that make the suite's directory, close the remotes each test opened,
 * and remove the directory at the end. Call it inside the suite's `describe`.
 */
export function remoteSuite(
  factory: RemoteFactory,
  sizes: { timeout: number; largeBytes: number },
): RemoteSuite {
  const { timeout } = sizes;
  const dir = `.sheepdog-remote-contract-${randomBytes(6).toString("hex")}`;
  const opened: Remote[] = [];
  const open = async (): Promise<Remote> => {
    const remote = await factory();
    opened.push(remote);
    return remote;
  };

  beforeAll(async () => {
    const remote = await open();
    await remote.mkdir(dir);
  }, timeout);

  afterEach(async () => {
    // Keep the first remote (used to clean up); close the rest.
    for (const remote of opened.splice(1)) await remote.close();
  });

  afterAll(async () => {
    const first = opened[0];
    if (!first) return;
    try {
      await first.exec(`rm -rf ${dir}`);
    } finally {
      await first.close();
      opened.length = 0;
    }
  }, timeout);

  return { dir, open, ...sizes };
}
