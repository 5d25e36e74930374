import { createServer, type Server } from "node:net";
import { describe, expect, it } from "vitest";
import type { RemoteSuite } from "./suite.js";

/** A server on this machine's loopback that answers each connection with `hello <what it read>`. */
async function helloServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.once("data", (data) => socket.end(`hello ${data.toString("utf8").trim()}\n`));
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return { server, port: address.port };
}

/** A command that connects to `port` on the remote's loopback, says `word` and prints the answer. */
function dialCommand(port: number, word: string): string {
  const python = [
    "import socket",
    `s = socket.create_connection(("127.0.0.1", ${port}), timeout=10)`,
    `s.sendall(b"${word}\\n")`,
    "print(s.makefile().readline().strip())",
  ].join("; ");
  return `python3 -c '${python}'`;
}

/**
 * The "streaming and tunnels" group: `onStdout` sees output while a command runs, and
 * `tunnelBack` (when the remote has it) carries connections from its loopback to this machine.
 */
export function describeTunnels(suite: RemoteSuite): void {
  const { open, timeout } = suite;
  describe("streaming and tunnels", () => {
    it("calls onStdout with output before the command ends", { timeout }, async () => {
      const remote = await open();
      const seen: string[] = [];
      const run = remote.exec("echo ready; sleep 1; echo done", {
        onStdout: (chunk) => seen.push(new TextDecoder().decode(chunk)),
      });
      let ended = false;
      void run.then(() => {
        ended = true;
      });
      await expect.poll(() => seen.join(""), { timeout: 5000 }).toContain("ready");
      expect(ended).toBe(false);
      expect((await run).stdout).toBe("ready\ndone\n");
      expect(seen.join("")).toBe("ready\ndone\n");
    });

    it("carries connections to tunnelBack's remote port to this machine (python3 on the remote)", {
      timeout,
    }, async (context) => {
      const remote = await open();
      if (!remote.tunnelBack) {
        context.skip("this remote has no tunnelBack (it is optional)");
        return;
      }
      const { server, port } = await helloServer();
      try {
        const tunnel = await remote.tunnelBack(port);
        expect(tunnel.remotePort).toBeGreaterThan(0);
        const answers = await Promise.all(
          ["one", "two", "three"].map((word) => remote.exec(dialCommand(tunnel.remotePort, word))),
        );
        expect(answers.map((answer) => answer.stdout.trim())).toEqual([
          "hello one",
          "hello two",
          "hello three",
        ]);
        await tunnel.close();
        await tunnel.ended;
        const after = await remote.exec(dialCommand(tunnel.remotePort, "four"));
        expect(after.code).not.toBe(0);
      } finally {
        server.close();
      }
    });
  });
}
