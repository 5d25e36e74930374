import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashToken } from "@sheepdog/contracts";
import {
  asNobody,
  canSwitchUsers,
  describeCluster,
  schedulerSettings,
} from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Sheepdog } from "./index.js";
import { createSheepdog, py } from "./index.js";

/**
 * Issue 19, on the real GridEngine: the execd copies every running job's script into its spool
 * (`/var/spool/gridengine/execd/<host>/job_scripts/<job>`, mode 0755), where any user of the
 * node reads it. Before, the token was in it, and anyone could fetch the arguments and post a
 * forged result that won. Each attack is repeated as the unprivileged user `nobody`.
 */

const SPOOL = "/var/spool/gridengine/execd";

/** The spooled copy of job `jobId`'s script, once the execd has made it. */
async function spooledScript(jobId: string): Promise<string> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    for (const host of existsSync(SPOOL) ? readdirSync(SPOOL) : []) {
      const path = join(SPOOL, host, "job_scripts", jobId);
      if (existsSync(path)) return path;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`GridEngine never spooled the script of job ${jobId} under ${SPOOL}.`);
}

/**
 * What nobody tries with what it can read (the spooled script: the server's URL, the request,
 * the token file's path): requests with no authorization, a bearer token of the old protocol,
 * and signatures under every key it could guess. Prints their HTTP statuses as JSON.
 */
const FORGER = String.raw`
import ast, base64, hashlib, hmac, json, os, re, sys, time, urllib.error, urllib.parse, urllib.request
script = open(sys.argv[1], "rb").read()
literal = re.findall(rb'json\.loads\(("(?:[^"\\]|\\.)*")\)\)\)', script)[-1].decode()
launch = json.loads(ast.literal_eval(literal))
url, request, token_file = launch["url"], launch["request"], launch["tokenFile"]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def send(method, path, headers, body=None):
    req = urllib.request.Request(url + path, data=body, method=method, headers=headers)
    try:
        return opener.open(req, timeout=20).status
    except urllib.error.HTTPError as error:
        return error.code
def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
path = "/v2/requests/%d/tasks/1" % request
host = urllib.parse.urlsplit(url).netloc
statuses = [send("GET", path, {}), send("GET", path, {"Authorization": "Bearer " + token_file})]
for guess in (script, token_file.encode(), url.encode(), str(request).encode(), b""):
    key = hashlib.sha256(guess).digest()
    nonce, now = b64(os.urandom(16)), int(time.time() * 1000)
    text = "\n".join(("sheepdog-worker-v2", "GET", host, path, nonce, str(now), ""))
    mac = b64(hmac.new(key, text.encode(), hashlib.sha256).digest())
    statuses.append(send("GET", path, {"Authorization": "Sheepdog %s.%d.%s" % (nonce, now, mac)}))
print(json.dumps(statuses))
`;

describeCluster("security on the GridEngine test cluster (issue 19)", (cluster) => {
  let dir: string;
  let sheepdog: Sheepdog;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-security-"));
    // The tasks (the cluster's user) wait for a gate file here; nobody reads the forger here.
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "forger.py"), FORGER, { mode: 0o644 });
    sheepdog = createSheepdog({
      ...schedulerSettings(cluster, "gridengine"),
      dbfile: join(dir, "sheepdog.sqlite"),
    });
  });
  afterAll(async () => {
    await sheepdog.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!canSwitchUsers)(
    "keeps the token out of the spooled job script that any user reads; nobody cannot read the token file, and forges nothing that passes (root only: switching users needs root)",
    async () => {
      const gate = join(dir, "gate");
      const waitAtGate = py<[number], number>`
def f(x):
    import os, time
    while not os.path.exists(${JSON.stringify(gate)}):
        time.sleep(0.2)
    return x * 2
`;
      let request: number | undefined;
      const running = sheepdog.map(waitAtGate, [[1], [2]], {
        onProgress: (progress) => {
          request ??= progress.request;
        },
      });
      try {
        while (request === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
        const { job } = await sheepdog.status(request);
        const script = await spooledScript(job?.parts[0]?.jobId ?? "none");

        // Any user of the node reads the spooled script (so the test is about something)...
        const spooled = await asNobody("cat", [script]);
        expect(spooled.status, spooled.stderr).toBe(0);
        expect(spooled.stdout).toContain("def main(launch, environ=None):");
        // ...and finds no token in it: only where the token file is.
        // The launch is the program's last line (the worker's own comments show its form too).
        const literal = [...spooled.stdout.matchAll(/json\.loads\("((?:[^"\\]|\\.)*)"\)\)\)/g)].at(
          -1,
        )?.[1];
        const tokenFile = JSON.parse(JSON.parse(`"${literal}"`)).tokenFile as string;
        expect(tokenFile).toMatch(/^\.sheepdog\/sheepdog_\d+_[0-9a-f]{8}\.token$/);
        const tokenPath = join(cluster.home, tokenFile);
        const token = readFileSync(tokenPath, "utf8").trim();
        const key = Buffer.from(hashToken(token));
        for (const secret of [
          token,
          key.toString("hex"),
          key.toString("base64"),
          key.toString("base64url"),
        ]) {
          expect(spooled.stdout.includes(secret)).toBe(false);
        }

        // The token file is the user's alone, in the user's own job directory.
        expect(statSync(tokenPath).mode & 0o777).toBe(0o600);
        expect(statSync(join(cluster.home, ".sheepdog")).mode & 0o777).toBe(0o700);
        const stolen = await asNobody("cat", [tokenPath]);
        expect(stolen.status).not.toBe(0);
        expect(stolen.stderr).toContain("Permission denied");

        // Requests forged from everything nobody can read are refused.
        const forged = await asNobody(cluster.python, [join(dir, "forger.py"), script]);
        expect(forged.status, forged.stderr).toBe(0);
        expect(JSON.parse(forged.stdout)).toEqual([401, 401, 401, 401, 401, 401, 401]);
        expect(await sheepdog.getResults(request)).toEqual([
          [[1], null],
          [[2], null],
        ]);

        // The tasks go on as if nothing happened; the token file goes when the map ends.
        writeFileSync(gate, "");
        expect(await running).toEqual([2, 4]);
        expect(existsSync(tokenPath)).toBe(false);
      } finally {
        writeFileSync(gate, "");
        await running.catch(() => undefined);
      }
    },
    180_000,
  );
});
