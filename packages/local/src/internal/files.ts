import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./source.js";

/** A file system failure as `REMOTE_FAILED`, with a hint that fits its errno. */
function fsError(error: unknown, what: string): SheepdogError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const hint =
    code === "ENOENT"
      ? "Check the path; relative paths are relative to the home directory, and upload creates no directories (mkdir first)"
      : code === "EACCES" || code === "EPERM"
        ? "Check the permissions on the path"
        : code === "EEXIST" || code === "ENOTDIR"
          ? "A file stands where a directory is needed; remove it or choose another path"
          : "Check the path and the disk";
  return SheepdogError.from(error, "REMOTE_FAILED", source, `Cannot ${what}. ${hint}`);
}

/**
 * Writes `target` atomically with exactly `mode`: a private temporary file beside it, written,
 * given its mode and renamed into place. `path` is what the caller asked for, for messages.
 */
export async function writeAtomically(
  target: string,
  contents: string | Uint8Array,
  mode: number,
  path: string,
): Promise<void> {
  const temp = join(
    dirname(target),
    `.${basename(target)}.sheepdog-${randomBytes(6).toString("hex")}`,
  );
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(temp, "wx", mode & 0o700);
    await handle.writeFile(contents);
    await handle.close();
    handle = undefined;
    await chmod(temp, mode);
    await rename(temp, target);
  } catch (error) {
    await handle?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw fsError(error, `write ${path} (local)`);
  }
}

/** Reads a whole file. */
export async function readWhole(target: string, path: string): Promise<Uint8Array> {
  try {
    const data = await readFile(target);
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (error) {
    throw fsError(error, `read ${path} (local)`);
  }
}

/** `mkdir -p` with `mode` for what it creates: an existing directory is fine, a file is not. */
export async function makeDirectory(target: string, mode: number, path: string): Promise<void> {
  try {
    await mkdir(target, { recursive: true, mode });
  } catch (error) {
    throw fsError(error, `create the directory ${path} (local)`);
  }
  const stats = await stat(target).catch((error: unknown) => {
    throw fsError(error, `create the directory ${path} (local)`);
  });
  if (!stats.isDirectory()) {
    throw new SheepdogError(
      "REMOTE_FAILED",
      source,
      `Cannot create the directory ${path} (local): a file stands there. Remove it or choose another path.`,
    );
  }
}
