import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WorkerLaunch } from "@sheepdog/contracts";
import { hashToken, WORKER_EXIT_CODES } from "@sheepdog/contracts";
import { startServer } from "@sheepdog/server";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { asNobody, canSwitchUsers } from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";
import { PYTHON, pyPickle, pyRepr, runPython } from "./__fixtures__/python.js";
import { writeTokenFile } from "./__fixtures__/token-file.js";
import { workerProgram } from "./worker-source.js";

/**
 * The attack of issue 19: a client runs a map (`host: "local"`: its server on 127.0.0.1), then
 * goes away (`--async`, a crash, Ctrl-C) while tasks are still queued. Another user of the
 * machine (here `nobody`) binds the same port and serves the workers a task of its own, whose
 * function, namespace and arguments would each create a file if executed or unpickled, and
 * keeps everything the workers send it. The workers must refuse it (exit `impostor`), run
 * nothing of it, and send it nothing it can use: no token, and signatures that no server
 * accepts again, neither one on another port that ran all along nor a new one on the same port.
 */

const NOBODY = 65534;

/** The squatter, run as nobody: `squat <port> <out> <victim dir> <request> <n>`, `replay ...`. */
const SQUATTER = String.raw`
import json, os, pickle, re, socket, struct, sys, time

def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    while length and len(body) < int(length.group(1)):
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body

class Evil(object):
    def __init__(self, path):
        self.path = path
    def __reduce__(self):
        return (open, (self.path, "w"))

def frames(sections):
    return b"".join(struct.pack(">I", len(s)) + s for s in sections)

def squat(port, out, victim, request, count):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(16)
    print("listening", flush=True)
    for n in range(1, count + 1):
        conn, _ = server.accept()
        data = read_request(conn)
        with open(os.path.join(out, "capture-%d.bin" % n), "wb") as f:
            f.write(data)
        task = int(re.search(rb"/tasks/(\d+)", data).group(1))
        source = "open(%r, 'w').close()\ndef f(*a):\n    open(%r, 'w').close()\n" % (
            os.path.join(victim, "pwned-exec"), os.path.join(victim, "pwned-call"))
        header = {"version": 2, "request": request, "task": task, "first": task - 1, "count": 1}
        body = frames([json.dumps(header).encode(), json.dumps({"name": "f", "source": source}).encode(),
                       pickle.dumps({"x": Evil(os.path.join(victim, "pwned-ns"))}),
                       pickle.dumps((Evil(os.path.join(victim, "pwned-args")),))])
        mac = re.search(rb"(?i)\r\nauthorization: *sheepdog [^.]+\.[0-9]+\.([A-Za-z0-9_-]+)", data)
        lies = [b"", b"Sheepdog-Proof: " + mac.group(1) + b"\r\n",
                b"Sheepdog-Proof: " + b"A" * 43 + b"\r\n"]
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), lies[n % 3]) + body)
        conn.close()

def status_of(port, data):
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(data)
    reply = b""
    while b"\r\n" not in reply:
        chunk = conn.recv(4096)
        if not chunk:
            break
        reply += chunk
    conn.close()
    return reply.split(b"\r\n")[0].decode("latin-1")

def replay(out, ports):
    results = []
    for name in sorted(os.listdir(out)):
        if not name.startswith("capture-"):
            continue
        with open(os.path.join(out, name), "rb") as f:
            data = f.read()
        for port in ports:
            results.append([name, port, "as captured", status_of(port, data)])
            # The Host rewritten for that port, and the time made fresh: the MAC no longer fits.
            moved = re.sub(rb"(?i)\r\nhost: *[^\r]*", b"\r\nHost: 127.0.0.1:%d" % port, data)
            results.append([name, port, "host rewritten", status_of(port, moved)])
            fresh = re.sub(rb"(sheepdog [^.]+\.)[0-9]+", b"\\g<1>%d" % int(time.time() * 1000), moved, flags=re.I)
            results.append([name, port, "time made fresh", status_of(port, fresh)])
    print(json.dumps(results))

if sys.argv[1] == "squat":
    squat(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
else:
    replay(sys.argv[2], [int(p) for p in sys.argv[3:]])
`;

let victim: string;
let squatterDir: string;

beforeAll(() => {
  // The job's user's own directory (0700): the token file, the dbfile, the job program.
  victim = mkdtempSync(join(tmpdir(), "sheepdog-victim-"));
  // The attacker's directory: its program and what it captures.
  squatterDir = mkdtempSync(join(tmpdir(), "sheepdog-squatter-"));
  writeFileSync(join(squatterDir, "squatter.py"), SQUATTER, { mode: 0o644 });
  if (canSwitchUsers) chownSync(squatterDir, NOBODY, NOBODY);
  chmodSync(squatterDir, 0o755);
});

afterAll(() => {
  rmSync(victim, { recursive: true, force: true });
  rmSync(squatterDir, { recursive: true, force: true });
});

/** Runs the squatter as nobody; resolves once it listens. */
function squat(port: number, request: number, count: number): Promise<ChildProcess> {
  const args = ["squat", String(port), squatterDir, victim, String(request), String(count)];
  const child = spawn(
    "runuser",
    ["-u", "nobody", "--", PYTHON, join(squatterDir, "squatter.py"), ...args],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  return new Promise((resolve, reject) => {
    child.stdout?.setEncoding("utf8").on("data", (text: string) => {
      if (text.includes("listening")) resolve(child);
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`the squatter exited ${code} before it listened`)));
  });
}

it.skipIf(!canSwitchUsers)(
  "a program of another user that takes the server's port gets no token, runs no code, and can replay nothing (root only: switching users needs root)",
  async () => {
    const dbfile = join(victim, "sheepdog.sqlite");
    const store = sqliteStore({ dbfile });
    const request = await store.createRequest({
      func: new TextEncoder().encode(
        JSON.stringify({ name: "f", source: "def f(x):\n    return x * 2\n" }),
      ),
      ns: new Uint8Array(),
      args: pyPickle(["(1,)", "(2,)", "(3,)"]),
    });
    const key = Buffer.from(hashToken(request.token));
    let server = await startServer({ store, port: 0, host: "127.0.0.1" });
    const port = server.port;
    // A server of the same dbfile on another port that runs all along (a `sheepdog serve`).
    const other = await startServer({ store, port: 0, host: "127.0.0.1" });
    // The launch core makes: the server's URL, and the token in a file of the user's own.
    const launch: WorkerLaunch = {
      url: `http://127.0.0.1:${port}`,
      tokenFile: writeTokenFile(victim, `sheepdog_${request.id}_0a1b2c3d`, request.token),
      request: request.id,
      pickleProtocol: 4,
      retryWindowSeconds: 5,
      maxReplyBytes: 1024 * 1024,
    };
    const program = join(victim, `sheepdog_${request.id}_0a1b2c3d.py`);
    writeFileSync(program, workerProgram(launch), { mode: 0o600 });
    const runTask = (task: number) => runPython(program, { SHEEPDOG_TASK_ID: String(task) });
    try {
      // The client goes away with its tasks queued; nobody takes the port.
      await server.close();
      const squatter = await squat(port, request.id, 3);
      const exited = new Promise((resolve) => squatter.on("exit", resolve));

      // The tasks start, each meets a lie (no proof, its own MAC echoed, a made-up proof).
      const runs = [];
      for (const task of [1, 2, 3]) runs.push(await runTask(task));
      await exited;
      for (const run of runs) {
        expect(run.code).toBe(WORKER_EXIT_CODES.impostor);
        expect(run.stderr).toContain(
          `Something answered at http://127.0.0.1:${port} (HTTP 200) without proving that it holds this request's key`,
        );
        expect(run.stdout).toBe("");
      }
      // Nothing it sent was executed or unpickled.
      expect(readdirSync(victim).filter((name) => name.startsWith("pwned"))).toEqual([]);

      // It could not read the token file; what it captured holds neither token nor key.
      const cat = await asNobody("cat", [launch.tokenFile]);
      expect(cat.status).not.toBe(0);
      expect(cat.stderr).toContain("Permission denied");
      const captures = readdirSync(squatterDir).filter((name) => name.startsWith("capture-"));
      expect(captures).toHaveLength(3);
      for (const name of captures) {
        const captured = readFileSync(join(squatterDir, name));
        expect(captured.toString("latin1")).toMatch(
          /\r\nAuthorization: Sheepdog [A-Za-z0-9_-]{22}\.\d+\.[A-Za-z0-9_-]{43}\r\n/,
        );
        for (const secret of [
          request.token,
          key.toString("hex"),
          key.toString("base64"),
          key.toString("base64url"),
        ]) {
          expect(captured.includes(secret)).toBe(false);
        }
      }

      // Replayed as captured, with the Host moved, or with a fresh time, to the server that ran
      // all along and to a new one on the port the squatter left: always 401.
      server = await startServer({ store: sqliteStore({ dbfile }), port, host: "127.0.0.1" });
      const replay = await asNobody(PYTHON, [
        join(squatterDir, "squatter.py"),
        "replay",
        squatterDir,
        String(port),
        String(other.port),
      ]);
      expect(replay.status, replay.stderr).toBe(0);
      const results = JSON.parse(replay.stdout) as [string, number, string, string][];
      expect(results).toHaveLength(3 * 2 * 3);
      for (const [, , how, status] of results)
        expect([how, status]).toEqual([how, expect.stringMatching(/^HTTP\/1\.1 401 /)]);
      expect(await store.counts(request.id)).toEqual({ tasks: 3, results: 0, errors: 0 });

      // The same workers, run again, find the real server and finish.
      for (const task of [1, 2, 3]) expect((await runTask(task)).code).toBe(WORKER_EXIT_CODES.ok);
      expect(pyRepr((await store.getResults(request.id)).map((r) => r.result))).toEqual([
        "2",
        "4",
        "6",
      ]);
      expect(existsSync(join(victim, "pwned-exec"))).toBe(false);
    } finally {
      await server.close();
      await other.close();
      await store.close();
    }
  },
  60_000,
);
