import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect as connectTcp } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sqliteStore } from "@sheepdog/store-sqlite";
import type { IsolatedClient, TestScheduler } from "@sheepdog/testcluster";
import {
  asNobody,
  canSwitchUsers,
  describeCluster,
  isolatedClientOf,
  pythonAllBegun,
  runAsLoginUser,
  schedulerSettings,
  testSchedulers,
} from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createSheepdog, py } from "./index.js";

const clientScript = fileURLToPath(new URL("./__fixtures__/isolated-client.mjs", import.meta.url));

/** What the client program printed, one event per line. */
type ClientEvent = { event: string } & Record<string, unknown>;

function eventsOf(stdout: string): ClientEvent[] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as ClientEvent);
}

function lastEvent(stdout: string, stderr: string): ClientEvent {
  const last = eventsOf(stdout).at(-1);
  if (!last) throw new Error(`the client printed nothing; its stderr:\n${stderr}`);
  return last;
}

/** A request's record, read from the dbfile another process writes. */
async function readRequest(dbfile: string, id: number) {
  const store = sqliteStore({ dbfile });
  try {
    return await store.getRequest(id);
  } finally {
    await store.close();
  }
}

/** The `host:port` of a request's relay, once its client has kept it in the meta (20 s). */
async function relayOf(dbfile: string, id: number): Promise<string> {
  for (let tries = 0; tries < 100; tries++) {
    const relay = (await readRequest(dbfile, id)).meta.relay;
    if (typeof relay === "string") return relay;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`request ${id} has no relay in its meta`);
}

describeCluster("nodes that cannot call back: the relay through the head node", (cluster) => {
  let dir: string;
  let client: IsolatedClient;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-relay-"));
    client = await isolatedClientOf(cluster);
  });
  afterAll(async () => {
    await client?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The configuration of a client in the namespace: the head node at its isolated address. */
  function isolatedConfig(scheduler: TestScheduler, extra: Record<string, unknown> = {}) {
    return {
      ...schedulerSettings(cluster, scheduler),
      host: client.sshHost,
      dbfile: join(dir, `${scheduler}.sqlite`),
      ...extra,
    };
  }

  /** A client outside the namespace that always goes through a relay. */
  function relayedSheepdog(scheduler: TestScheduler, dbfile: string) {
    return createSheepdog({ ...schedulerSettings(cluster, scheduler), dbfile, connect: "relay" });
  }

  /** Waits (5 s at most) until nothing listens on `port` of the head node: the relay ended. */
  async function expectRelayGone(port: number): Promise<void> {
    const listening = async () =>
      (await runAsLoginUser(cluster, `ss -ltnH 'sport = :${port}' | wc -l`)).stdout.trim();
    await expect.poll(listening, { timeout: 5000, interval: 250 }).toBe("0");
  }

  /** Runs the client program in the namespace with `input`, to its end. */
  async function runIsolated(input: Record<string, unknown>, timeoutMs = 240_000) {
    const started = Date.now();
    const run = await client.run(process.execPath, [clientScript, JSON.stringify(input)], {
      timeoutMs,
    });
    return { ...run, event: lastEvent(run.stdout, run.stderr), ms: Date.now() - started };
  }

  it("the namespace is isolated: nothing outside can connect to the client", async () => {
    const listening = client.start(process.execPath, [
      "-e",
      "require('node:net').createServer(s => s.end('in')).listen(47123, '0.0.0.0', () => console.log('up'))",
    ]);
    await new Promise((resolve) => listening.stdout?.once("data", resolve));
    try {
      const reached = await new Promise<string>((resolve) => {
        const socket = connectTcp({
          host: client.address,
          port: 47123,
          timeout: 2000,
        });
        socket.on("data", () => resolve("connected"));
        socket.on("timeout", () => {
          socket.destroy();
          resolve("timed out");
        });
        socket.on("error", (error: Error) => resolve(error.message));
      });
      expect(reached).toBe("timed out");
      // ...while the client reaches the head node's sshd.
      const ssh = await client.run("bash", [
        "-c",
        `exec 3<>/dev/tcp/${client.sshHost}/${cluster.port} && head -c 4 <&3`,
      ]);
      expect(ssh.stdout).toBe("SSH-");
    } finally {
      listening.kill("SIGKILL");
    }
  });

  it('connect: "direct" fails within a minute, with an error that names the setting', async () => {
    const run = await runIsolated({
      scenario: "map",
      config: isolatedConfig("gridengine", { connect: "direct" }),
      source: "def f(x):\n    return x\n",
      args: [[1]],
    });
    expect(run.event).toMatchObject({ event: "failed", code: "CONFIG_INVALID" });
    expect(String(run.event.message)).toContain(
      'connect is "direct", but the cluster\'s head node cannot reach',
    );
    expect(String(run.event.message)).toContain('Set connect to "relay"');
    expect(run.ms).toBeLessThan(60_000);
  }, 90_000);

  for (const scheduler of testSchedulers) {
    it(`${scheduler}: with no connectivity setting, the original's examples complete through the relay`, async () => {
      const run = await runIsolated({ scenario: "examples", config: isolatedConfig(scheduler) });
      expect(run.event, run.stderr).toMatchObject({
        event: "done",
        sync: [2, 3, 4],
        withNs: [11, 21],
        async: [10, 12],
        failing: { results: [1, null] },
      });
      expect(run.stderr).toMatch(
        /workers reach this machine: the head node cannot reach http:\/\/\S+ \(cannot connect \([^)]*\)\), so through the relay at http:\/\/\S+/,
      );
      const failing = run.event.failing as { errors: (string | null)[] };
      expect(failing.errors[1]).toContain("ZeroDivisionError");
    }, 240_000);
  }

  it('connect: "relay": the original\'s examples complete through the relay', async () => {
    const run = await runIsolated({
      scenario: "examples",
      config: isolatedConfig("gridengine", { connect: "relay" }),
    });
    expect(run.event, run.stderr).toMatchObject({
      event: "done",
      sync: [2, 3, 4],
      withNs: [11, 21],
      async: [10, 12],
      failing: { results: [1, null] },
    });
    expect(run.stderr).toMatch(/workers reach this machine: connect is "relay": http:\/\/\S+/);
  }, 240_000);

  it("outside any namespace, auto picks the direct route (the relay stands by)", async () => {
    const child = spawn(process.execPath, [
      clientScript,
      JSON.stringify({
        scenario: "examples",
        config: {
          ...schedulerSettings(cluster, "gridengine"),
          dbfile: join(dir, "outside.sqlite"),
        },
      }),
    ]);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    await new Promise((resolve) => child.on("close", resolve));
    expect(lastEvent(stdout, stderr)).toMatchObject({ event: "done", sync: [2, 3, 4] });
    expect(stderr).toMatch(
      /workers reach this machine: the head node reached http:\/\/\S+ directly \(the relay at http:\/\/\S+ stands by\)/,
    );
  }, 240_000);

  it("the SSH connection dropped mid-map and back: the relay is started again and every result arrives", async () => {
    const input = {
      scenario: "map",
      config: isolatedConfig("gridengine", { connect: "relay", retryWindowSeconds: 120 }),
      source: "def f(x):\n    import time\n    time.sleep(12)\n    return x + 1\n",
      args: [[1], [2], [3]],
      options: { chunkSize: 1 },
    };
    const child = client.start(process.execPath, [clientScript, JSON.stringify(input)]);
    let stdout = "";
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      stderr += chunk;
    });
    const running = new Promise<void>((resolve) =>
      child.stdout?.on("data", (chunk) => {
        stdout += chunk;
        if (stdout.includes('"event":"running"')) resolve();
      }),
    );
    const closed = new Promise((resolve) => child.on("close", resolve));
    await running;
    // Every packet the client sends to the head node's sshd is answered with a reset: the
    // connection breaks at its next word (a status round) and cannot be made again.
    const cut = [
      "add table inet sheepdog_cut",
      "add chain inet sheepdog_cut output { type filter hook output priority 0 ; }",
      `add rule inet sheepdog_cut output tcp dport ${cluster.port} reject with tcp reset`,
    ].join("\n");
    expect((await client.run("nft", ["-f", "-"], { input: cut })).status).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 8000));
    expect((await client.run("nft", ["delete", "table", "inet", "sheepdog_cut"])).status).toBe(0);
    await closed;
    expect(lastEvent(stdout, stderr), stderr).toMatchObject({ event: "done", results: [2, 3, 4] });
  }, 240_000);

  /** Starts the client program in the namespace; resolves once its job is queued. */
  async function startIsolated(input: Record<string, unknown>) {
    const child = client.start(process.execPath, [clientScript, JSON.stringify(input)]);
    const output = { stdout: "", stderr: "" };
    child.stderr?.on("data", (chunk) => {
      output.stderr += chunk;
    });
    const closed = new Promise((resolve) => child.on("close", resolve));
    const request = await new Promise<number>((resolve, reject) => {
      child.stdout?.on("data", (chunk) => {
        output.stdout += chunk;
        const running = eventsOf(output.stdout).find((e) => e.event === "running");
        if (running) resolve(running.request as number);
      });
      void closed.then(() => reject(new Error(`the client ended early: ${output.stderr}`)));
    });
    return { child, request, output, closed };
  }

  it("a task killed on its node is its error alone, with the cause, through the relay", async () => {
    const run = await runIsolated({
      scenario: "map",
      config: isolatedConfig("gridengine"),
      source:
        "def f(x):\n    import os, signal\n    if x == 2:\n        os.kill(os.getpid(), signal.SIGKILL)\n    return x * 10\n",
      args: [[1], [2], [3]],
      options: { chunkSize: 1 },
    });
    expect(run.event, run.stderr).toMatchObject({ event: "done", results: [10, null, 30] });
    const errors = run.event.errors as (string | null)[];
    expect(errors[1]).toMatch(/\[signal\].*signal 9/s);
  }, 240_000);

  it("the same task run twice by hand, through the relay: the first report wins and counts once", async () => {
    const config = isolatedConfig("gridengine");
    const { request, closed, output } = await startIsolated({
      scenario: "map",
      config,
      progress: true,
      source:
        "def f(x):\n    import os, time\n    time.sleep(15 if x == 1 else 0)\n    return [x, os.environ.get('JOB_ID', 'by hand')]\n",
      args: [[0], [1]],
      options: { chunkSize: 1 },
    });
    // Task 1 has reported while task 2 still runs: run task 1 again by hand, twice, on the
    // head node, as its workers do (through the relay, as they do).
    for (let i = 0; i < 300; i++) {
      const reported = eventsOf(output.stdout).some(
        (e) => e.event === "progress" && (e.results as number) >= 1,
      );
      if (reported) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const { meta } = await readRequest(config.dbfile, request);
    const name = (meta.job as { name?: string }).name;
    for (let i = 0; i < 2; i++) {
      const byHand = await runAsLoginUser(
        cluster,
        `cd .sheepdog && SGE_TASK_ID=1 /usr/bin/python3 ${name}.py`,
      );
      expect(byHand.stdout).toContain("SHEEPDOG-REPORT v1");
    }
    await closed;
    const done = lastEvent(output.stdout, output.stderr);
    expect(done, output.stderr).toMatchObject({ event: "done" });
    const jobId = (meta.job as { id: string }).id;
    expect(done.results).toEqual([
      [0, jobId],
      [1, jobId],
    ]);
  }, 240_000);

  it("the client killed (SIGKILL) while tasks run: a new one serves the request, restarts its relay, and gets every result", async () => {
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    const config = isolatedConfig("gridengine", { port, dbfile: join(dir, "killed.sqlite") });
    const { child, request, closed } = await startIsolated({
      scenario: "map",
      config,
      source: "def f(x):\n    import time\n    time.sleep(6)\n    return x * x\n",
      args: [[1], [2], [3]],
      options: { chunkSize: 1 },
    });
    child.kill("SIGKILL");
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 8000));
    const run = await runIsolated({ scenario: "serve-and-collect", config, request });
    expect(run.event, run.stderr).toMatchObject({ event: "done", results: [1, 4, 9] });
  }, 240_000);

  it("the client gone for good: recover, from the isolated client, stores what the workers printed", async () => {
    const config = isolatedConfig("gridengine", {
      dbfile: join(dir, "recover.sqlite"),
      retryWindowSeconds: 8,
    });
    const begun = `/tmp/sheepdog-relay-begun-${process.pid}-${Date.now()}`;
    const { child, request, closed } = await startIsolated({
      scenario: "map",
      config,
      source: `def f(x):\n${pythonAllBegun(begun, 3)}\n    time.sleep(4)\n    return x - 1\n`,
      args: [[1], [2], [3]],
      options: { chunkSize: 1 },
    });
    // Once every call has begun (its task has its arguments), the client goes: the workers
    // cannot report, give up after their window and leave their reports in their output.
    for (let i = 0; i < 360; i++) {
      const { stdout } = await runAsLoginUser(cluster, `ls ${begun} 2>/dev/null | wc -l`);
      if (stdout.trim() === "3") break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    child.kill("SIGKILL");
    await closed;
    const { meta } = await readRequest(config.dbfile, request);
    const jobId = (meta.job as { id: string }).id;
    for (let i = 0; i < 120; i++) {
      const { stdout } = await runAsLoginUser(
        cluster,
        `qstat -u '*' | grep -c '^ *${jobId} ' || true`,
      );
      if (stdout.trim() === "0") break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const run = await runIsolated({ scenario: "recover", config, request });
    expect(run.event, run.stderr).toMatchObject({
      event: "done",
      outcome: { found: 3, stored: 3, missing: 0 },
      results: [0, 1, 2],
    });
  }, 240_000);

  it.skipIf(!canSwitchUsers)(
    "another user of the head node gets nothing through the relay: no task, no forged result, not its port",
    async () => {
      const config = isolatedConfig("gridengine", { dbfile: join(dir, "attack.sqlite") });
      const { request, closed, output } = await startIsolated({
        scenario: "map",
        config,
        progress: true,
        source: "def f(x):\n    import time\n    time.sleep(10)\n    return x\n",
        args: [[7]],
      });
      const [host, port] = (await relayOf(config.dbfile, request)).split(":");
      // As nobody, on the head node: fetch a task, post a forged result with a made-up
      // signature, and try to take the relay's port over.
      const attack = [
        "import http.client, json, subprocess, sys",
        `host, port = ${JSON.stringify(host)}, ${Number(port)}`,
        "out = {}",
        "c = http.client.HTTPConnection(host, port, timeout=10)",
        `c.request("GET", "/v2/requests/${request}/tasks/1")`,
        "out['fetch'] = c.getresponse().status",
        "c = http.client.HTTPConnection(host, port, timeout=10)",
        `c.request("POST", "/v2/requests/${request}/tasks/1/reports", body=b"x" * 64, headers={"Authorization": "Sheepdog AAAAAAAAAAAAAAAAAAAAAA.1.AAAA", "Content-Type": "application/vnd.sheepdog.reports+frames"})`,
        "out['forge'] = c.getresponse().status",
        "print(json.dumps(out))",
      ].join("\n");
      const attempt = await asNobody("python3", ["-c", attack]);
      expect(JSON.parse(attempt.stdout), attempt.stderr).toEqual({ fetch: 401, forge: 401 });
      // The takeover of a relay's port is for relays of the same user only.
      const takeover = await asNobody("python3", [
        "-c",
        `import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ntry:\n    s.bind(("0.0.0.0", ${Number(port)})); print("bound")\nexcept OSError as e:\n    print("refused", e.errno)`,
      ]);
      expect(takeover.stdout.trim()).toBe("refused 98");
      await closed;
      expect(lastEvent(output.stdout, output.stderr)).toMatchObject({
        event: "done",
        results: [7],
      });
    },
    240_000,
  );

  it("a relay killed on the head node mid-map is started again, on its port", async () => {
    const config = isolatedConfig("slurm", { dbfile: join(dir, "relay-killed.sqlite") });
    const { request, closed, output } = await startIsolated({
      scenario: "map",
      config,
      source: "def f(x):\n    import time\n    time.sleep(4)\n    return -x\n",
      args: [[1], [2], [3], [4], [5], [6]],
      options: { chunkSize: 1 },
    });
    const port = Number((await relayOf(config.dbfile, request)).split(":")[1]);
    // The relay's pid, from the socket that listens on its port (the login user's own).
    const pidOf = async (): Promise<string> =>
      (
        await runAsLoginUser(
          cluster,
          `ss -ltnpH 'sport = :${port}' | grep -o 'pid=[0-9]*' | cut -d= -f2 | head -1`,
        )
      ).stdout.trim();
    const first = await pidOf();
    expect(first).toMatch(/^\d+$/);
    await runAsLoginUser(cluster, `kill -KILL ${first}`);
    let second = "";
    for (let i = 0; i < 100 && (second === "" || second === first); i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      second = await pidOf();
    }
    expect(second).toMatch(/^\d+$/);
    expect(second).not.toBe(first);
    await closed;
    expect(lastEvent(output.stdout, output.stderr), output.stderr).toMatchObject({
      event: "done",
      results: [-1, -2, -3, -4, -5, -6],
    });
  }, 240_000);

  it("the relay ends with its map, while the client goes on", async () => {
    const dbfile = join(dir, "ends.sqlite");
    const dog = relayedSheepdog("slurm", dbfile);
    try {
      const { request, results } = await dog.mapSettled(
        py`
def f(x):
    return x * 3
`,
        [[1], [2]],
      );
      expect(results).toEqual([
        { ok: true, value: 3 },
        { ok: true, value: 6 },
      ]);
      await expectRelayGone(Number((await relayOf(dbfile, request)).split(":")[1]));
    } finally {
      await dog.close();
    }
  }, 120_000);

  it("the windows of a stream share one relay, which ends with the last of them", async () => {
    const dbfile = join(dir, "shared.sqlite");
    const dog = relayedSheepdog("gridengine", dbfile);
    try {
      const requests = new Set<number>();
      const values: number[] = [];
      const args = [1, 2, 3, 4, 5, 6].map((x) => [x] as [number]);
      const f = py<[number], number>`
def f(x):
    return x * 3
`;
      for await (const outcome of dog.mapStream(f, args, {
        windowSize: 2,
        onProgress: (progress) => requests.add(progress.request as number),
      })) {
        if (outcome.ok) values.push(outcome.value);
      }
      expect(values.sort((a, b) => a - b)).toEqual([3, 6, 9, 12, 15, 18]);
      expect(requests.size).toBe(3);
      const relays = await Promise.all([...requests].map((request) => relayOf(dbfile, request)));
      expect(new Set(relays).size).toBe(1);
      await expectRelayGone(Number((relays[0] as string).split(":")[1]));
    } finally {
      await dog.close();
    }
  }, 120_000);

  it('connect: "relay": a 1,000-call chunked map returns every result, in order', async () => {
    const run = await runIsolated({
      scenario: "map",
      config: isolatedConfig("gridengine", { connect: "relay" }),
      source: "def f(x):\n    return x * x\n",
      args: Array.from({ length: 1000 }, (_, i) => [i]),
      options: { chunkSize: 25 },
    });
    expect(run.event, run.stderr).toMatchObject({ event: "done" });
    expect(run.event.results).toEqual(Array.from({ length: 1000 }, (_, i) => i * i));
  }, 240_000);
});
