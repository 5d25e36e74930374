import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Server, connect as tcpConnect } from "node:net";
import { memoryStore } from "@sheepdog/contracts/testing";
import type { SheepdogServer } from "@sheepdog/server";
import { startServer } from "@sheepdog/server";
import { afterEach, describe, expect, it } from "vitest";
import type { RelayFacts } from "./relay-source.js";
import { parseRelayFacts, relayCommand } from "./relay-source.js";

const children: ChildProcess[] = [];
const servers: { close(): unknown }[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
  for (const server of servers.splice(0)) await server.close();
});

/** A TCP server on the loopback that answers each line with `echo <line>`. */
async function echoServer(): Promise<number> {
  const server: Server = createServer((socket) => {
    socket.on("data", (data) => socket.write(`echo ${data.toString("utf8")}`));
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push({ close: () => new Promise((resolve) => server.close(resolve)) });
  return (server.address() as { port: number }).port;
}

/** Runs the relay under `sh` as the SSH session would; resolves with what it printed first. */
async function startRelay(
  tunnelPort: number,
  options: { listenPort?: number; direct?: string } = {},
): Promise<{ child: ChildProcess; facts: RelayFacts }> {
  const command = relayCommand({
    python: "python3",
    listenPort: options.listenPort ?? 0,
    tunnelPort,
    ...(options.direct !== undefined && { direct: options.direct }),
  });
  const child = spawn("/bin/sh", ["-c", command], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (data: Buffer) => {
      out += data.toString("utf8");
      if (out.includes("\n")) resolve(out.split("\n")[0] as string);
    });
    child.on("exit", (code) => reject(new Error(`relay exited with ${code}`)));
  });
  const facts = parseRelayFacts(line);
  if (!facts) throw new Error(`not relay facts: ${line}`);
  return { child, facts };
}

/** Sends `text` through the relay on the loopback and resolves with the answer. */
function through(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: "127.0.0.1", port }, () => socket.write(text));
    socket.once("data", (data) => {
      resolve(data.toString("utf8"));
      socket.end();
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error("closed without an answer")));
  });
}

describe("the relay (real python3)", () => {
  it("carries each connection to the tunnel port and back, 32 at once", async () => {
    const { facts } = await startRelay(await echoServer());
    expect(facts.port).toBeGreaterThan(0);
    expect(facts.direct).toBeNull();
    const words = Array.from({ length: 32 }, (_, i) => `word${i}`);
    const answers = await Promise.all(words.map((word) => through(facts.port, word)));
    expect(answers).toEqual(words.map((word) => `echo ${word}`));
  });

  it("carries megabytes both ways intact, and passes on a half-close", async () => {
    // A server that answers with everything it read, once its client has finished sending.
    const server = createServer((socket) => {
      const parts: Buffer[] = [];
      socket.on("data", (data: Buffer) => parts.push(data));
      socket.on("end", () => socket.end(Buffer.concat(parts)));
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push({ close: () => new Promise((resolve) => server.close(resolve)) });
    const { facts } = await startRelay((server.address() as { port: number }).port);
    const sent = Buffer.from(Array.from({ length: 3 * 1024 * 1024 }, (_, i) => (i * 7) % 251));
    const echoed = await Promise.all(
      [0, 1, 2, 3].map(
        () =>
          new Promise<Buffer>((resolve, reject) => {
            const parts: Buffer[] = [];
            const socket = tcpConnect({ host: "127.0.0.1", port: facts.port }, () =>
              socket.end(sent),
            );
            socket.on("data", (data: Buffer) => parts.push(data));
            socket.on("end", () => resolve(Buffer.concat(parts)));
            socket.on("error", reject);
          }),
      ),
    );
    for (const answer of echoed) expect(answer.equals(sent)).toBe(true);
  });

  it("probes the direct route: ok for a Sheepdog server, why not otherwise", {
    timeout: 20_000,
  }, async () => {
    const server: SheepdogServer = await startServer({
      store: memoryStore(),
      port: 0,
      host: "127.0.0.1",
    });
    servers.push(server);
    const tunnel = await echoServer();
    expect((await startRelay(tunnel, { direct: `127.0.0.1:${server.port}` })).facts.direct).toBe(
      "ok",
    );
    const other = await startRelay(tunnel, { direct: `127.0.0.1:${tunnel}` });
    expect(other.facts.direct).toMatch(/^(something else answers there|no answer)/);
    const closedPort = await echoServer();
    await servers.pop()?.close();
    const nothing = await startRelay(tunnel, { direct: `127.0.0.1:${closedPort}` });
    expect(nothing.facts.direct).toMatch(/^cannot connect/);
  });

  it("probes before it listens: a direct route on its own port is not the relay itself", {
    timeout: 20_000,
  }, async () => {
    const port = await echoServer();
    await servers.pop()?.close();
    const { facts } = await startRelay(await echoServer(), {
      listenPort: port,
      direct: `127.0.0.1:${port}`,
    });
    expect(facts.port).toBe(port);
    expect(facts.direct).toMatch(/^cannot connect/);
  });

  it("closes a worker's connection when the tunnel is down, and carries again once it is back", async () => {
    const tunnelPort = await echoServer();
    await servers.pop()?.close();
    const { facts } = await startRelay(tunnelPort);
    await expect(through(facts.port, "lost")).rejects.toThrow();
    const back = createServer((socket) => socket.on("data", (d) => socket.write(`back ${d}`)));
    await new Promise<void>((resolve) => back.listen(tunnelPort, "127.0.0.1", resolve));
    servers.push({ close: () => new Promise((resolve) => back.close(resolve)) });
    expect(await through(facts.port, "again")).toBe("back again");
  });

  it("listens on the port it is given again, taking it over from an older relay", async () => {
    const tunnel = await echoServer();
    const first = await startRelay(tunnel);
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));
    const again = await startRelay(tunnel, { listenPort: first.facts.port });
    expect(again.facts.port).toBe(first.facts.port);
    // An older relay that still holds the port (its session gone unnoticed) is replaced.
    const exited = new Promise((resolve) => again.child.once("exit", resolve));
    const third = await startRelay(tunnel, { listenPort: first.facts.port });
    expect(third.facts.port).toBe(first.facts.port);
    await exited;
    expect(await through(third.facts.port, "new")).toBe("echo new");
  });

  it("refuses a port that another program holds, with status 3", async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "0.0.0.0", resolve));
    servers.push({ close: () => new Promise((resolve) => holder.close(resolve)) });
    const port = (holder.address() as { port: number }).port;
    await expect(startRelay(await echoServer(), { listenPort: port })).rejects.toThrow(
      "relay exited with 3",
    );
  }, 20_000);

  it("ends by itself when the session that started it goes", async () => {
    const tunnel = await echoServer();
    // The shell is the relay's parent here (no exec), as sshd's session process is.
    const command = relayCommand({ python: "python3", listenPort: 0, tunnelPort: tunnel });
    const shell = spawn("/bin/sh", ["-c", `${command.replace(/^exec /, "")} & wait`], {
      // Its stderr is a pipe whose reader goes with the session, as over SSH.
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(shell);
    const line = await new Promise<string>((resolve) =>
      shell.stdout?.once("data", (data: Buffer) => resolve(data.toString("utf8"))),
    );
    const facts = parseRelayFacts(line.trim()) as RelayFacts;
    shell.kill("SIGKILL");
    shell.stdout?.destroy();
    shell.stderr?.destroy();
    await expect
      .poll(
        () =>
          through(facts.port, "x").then(
            () => "up",
            () => "gone",
          ),
        {
          timeout: 5000,
          interval: 200,
        },
      )
      .toBe("gone");
  });

  it("refuses bad launch settings before anything runs", () => {
    expect(() => relayCommand({ python: "python3", listenPort: 70000, tunnelPort: 1 })).toThrow(
      "RelayLaunch.listenPort must be a port from 0 to 65535",
    );
    expect(() => relayCommand({ python: "py\nthon", listenPort: 0, tunnelPort: 1 })).toThrow(
      "RelayLaunch.python",
    );
    expect(parseRelayFacts('{"host":"a;rm -rf","port":1,"direct":null}')).toBeUndefined();
    expect(parseRelayFacts("not json")).toBeUndefined();
  });
});
