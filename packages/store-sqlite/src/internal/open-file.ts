import { constants } from "node:fs";
import { access, open, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import type { SqliteDatabase } from "../sqlite-database.js";
import { LOCK_SLICE_MS } from "./busy.js";
import { source, storeError } from "./errors.js";

function ioError(message: string, cause?: unknown): SheepdogError {
  return new SheepdogError("STORE_IO", source, message, { cause });
}

async function allows(path: string, mode: number): Promise<boolean> {
  try {
    await access(path, mode);
    return true;
  } catch {
    return false;
  }
}

const readWrite = constants.R_OK | constants.W_OK;

/**
 * Checks a database path before SQLite sees it, so that the common mistakes get a clear
 * message naming the file: a directory, a file that cannot be read, a directory that does
 * not exist or where the file cannot be created. Resolves with how the file can be opened: an
 * existing file that can be read but not written is opened read-only.
 */
export async function checkPath(file: string): Promise<"read-write" | "read-only"> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw ioError(`${file} cannot be examined: ${(error as Error).message}.`, error);
    }
    const dir = dirname(file);
    let dirInfo: Awaited<ReturnType<typeof stat>>;
    try {
      dirInfo = await stat(dir);
    } catch (dirError) {
      throw ioError(
        `${file} cannot be created: its directory ${dir} does not exist. Create the directory, or use another dbfile.`,
        dirError,
      );
    }
    if (!dirInfo.isDirectory()) {
      throw ioError(`${file} cannot be created: ${dir} is not a directory. Use another dbfile.`);
    }
    if (!(await allows(dir, readWrite))) {
      throw ioError(
        `${file} cannot be created: the directory ${dir} is not writable. Check its permissions, or use another dbfile.`,
      );
    }
    return "read-write";
  }
  if (info.isDirectory()) {
    throw ioError(
      `${file} is a directory, not a database file. Use a file path such as ${file.replace(/\/+$/, "")}/sheepdog.sqlite.`,
    );
  }
  if (!info.isFile()) {
    throw ioError(`${file} is not a regular file. Use a path to a database file.`);
  }
  if (await allows(file, readWrite)) return "read-write";
  if (await allows(file, constants.R_OK)) return "read-only";
  throw ioError(
    `${file} cannot be read: permission denied. Check its permissions (and owner), or use another dbfile.`,
  );
}

/**
 * Creates `file`, empty, with mode 0600 whatever the umask, unless it exists: an existing
 * file keeps the mode its owner gave it. SQLite gives the -wal and -shm files it makes the
 * mode of the main file, so they are 0600 too: on a shared machine, no other user reads the
 * arguments and results.
 */
async function createPrivate(file: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, "wx", 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return;
    throw ioError(`${file} cannot be created: ${(error as Error).message}.`, error);
  }
  try {
    // The umask may have taken bits from 0600 (a umask of 0277 leaves 0400).
    await handle.chmod(0o600);
  } catch (error) {
    throw ioError(
      `${file} was created but its mode cannot be set to 0600: ${(error as Error).message}.`,
      error,
    );
  } finally {
    await handle.close();
  }
}

/**
 * Opens `file` with better-sqlite3, loaded only now so that an injected database needs none.
 * A new file is created 0600 (see {@link createPrivate}); one that this process can read but
 * not write is opened read-only, so that its requests can still be looked up (every write
 * then fails with `STORE_IO`).
 */
export async function openFile(file: string): Promise<SqliteDatabase> {
  const access = file === ":memory:" ? "read-write" : await checkPath(file);
  if (access === "read-write" && file !== ":memory:") await createPrivate(file);
  const { default: Database } = await import("better-sqlite3");
  const readonly = access === "read-only";
  let db: InstanceType<typeof Database> | undefined;
  try {
    db = new Database(file, { timeout: LOCK_SLICE_MS, readonly, fileMustExist: readonly });
    // A read-only database is first read here, where SQLite sets up its shared memory.
    if (readonly) db.prepare("SELECT count(*) FROM sqlite_schema").all();
    return db;
  } catch (error) {
    db?.close();
    throw readonly ? readOnlyOpenError(error, file) : storeError(error, file);
  }
}

/**
 * Why a read-only file did not open. Reading a database in WAL mode (as every Sheepdog dbfile
 * is) takes its -shm file beside it, which SQLite cannot create in a directory that cannot be
 * written.
 */
function readOnlyOpenError(error: unknown, file: string): SheepdogError {
  const code = (error as { code?: unknown }).code;
  if (code === "SQLITE_READONLY_DIRECTORY" || code === "SQLITE_CANTOPEN") {
    return ioError(
      `${file} can be read but not written, and its directory ${dirname(file)} cannot be written either: SQLite needs to create ${file}-shm there to read the database (${(error as Error).message}). Copy the dbfile to a directory you can write, or make its directory writable.`,
      error,
    );
  }
  return storeError(error, file);
}
