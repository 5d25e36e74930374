import type { Remote } from "@sheepdog/contracts";
import { SheepdogError, shellQuote } from "@sheepdog/contracts";
import { source } from "./source.js";
import type { Submitted } from "./submit.js";

/**
 * Writes the request's token where only the user can read it: `<directory>/<name>.token`,
 * mode 0600, in `dir` as {@link privateDirectory} made it ready. Returns the file's path, as
 * the workers find it (relative to the home directory unless absolute).
 */
export async function writeTokenFile(
  remote: Remote,
  dir: string,
  name: string,
  token: string,
): Promise<string> {
  const path = `${dir}/${name}.token`;
  await remote.upload(path, `${token}\n`, 0o600);
  return path;
}

/**
 * Creates the job directory (0700) and checks that it is the user's alone: a directory that
 * others can read or write is refused, not changed (it is the user's to fix). Resolves with its
 * path, without a trailing slash.
 */
export async function privateDirectory(remote: Remote, directory: string): Promise<string> {
  const dir = directory.replace(/(.)\/+$/, "$1");
  await remote.mkdir(dir, 0o700);
  await checkPrivateDirectory(remote, dir);
  return dir;
}

/**
 * Refuses a job directory that another user could read or change: not the user's own, with
 * a permission bit for its group or others (setgid and sticky bits alone are fine), or an
 * access control list.
 */
async function checkPrivateDirectory(remote: Remote, dir: string): Promise<void> {
  const { stdout, code } = await remote.exec(`ls -ldn -- ${shellQuote(dir)} && id -u`);
  const [listing = "", uid = ""] = stdout.split("\n");
  const fields = listing.trim().split(/\s+/);
  const mode = fields[0] ?? "";
  if (code !== 0 || !mode.startsWith("d")) {
    throw new SheepdogError(
      "REMOTE_FAILED",
      source,
      `Cannot check the permissions of the job directory ${dir} on ${remote.name}. Check that it is a directory you own.`,
    );
  }
  const private_ =
    /^d[r-][w-][xsS-]-{2}[-S]-{2}[-T]$/.test(mode.slice(0, 10)) && !mode.slice(10).includes("+");
  if (!private_ || fields[2] !== uid.trim()) {
    const why = fields[2] !== uid.trim() ? `owned by user ${fields[2]}` : `mode ${mode}`;
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `The job directory ${dir} on ${remote.name} is not yours alone (${why}), and it would hold this map's token. Run "chmod 700 ${dir}" on ${remote.name} if it is yours, or set sshDir to a directory only you can use.`,
      { detail: { directory: dir, mode, owner: fields[2] } },
    );
  }
}

/**
 * Removes the request's token file once no task of the request can still run: `map` calls it
 * when it ends, unless it leaves its job running (`keepJob`), and a submission that failed
 * calls it too. A failure to remove it is not the map's failure. After `mapAsync` the file
 * stays: its tasks may wait in the queue for longer than this process lives, and report to a
 * later `sheepdog serve`.
 */
export async function removeTokenFile(
  submitted: Pick<Submitted, "lease" | "tokenFile">,
): Promise<void> {
  const { lease, tokenFile } = submitted;
  if (!lease || tokenFile === undefined) return;
  submitted.tokenFile = undefined;
  await lease.cluster.remote.exec(`rm -f -- ${shellQuote(tokenFile)}`).catch(() => undefined);
}
