import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Writes a request's token as core does before it submits a job: `<dir>/<name>.token`, mode
 * 0600, in `dir` (made 0700 here); returns the file's absolute path, the launch's tokenFile.
 */
export function writeTokenFile(dir: string, name: string, token: string): string {
  chmodSync(dir, 0o700);
  const path = join(dir, `${name}.token`);
  writeFileSync(path, token, { mode: 0o600 });
  return path;
}
