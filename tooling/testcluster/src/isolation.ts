import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Where `up` lets isolated clients reach the head node's sshd (an address on its loopback). */
export interface IsolationFacts {
  sshHost: string;
}

/** What a command run in an isolated client's namespace did. */
export interface IsolatedRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * A network namespace that stands for a client machine the cluster cannot reach (a laptop
 * behind NAT): it reaches the head node's sshd through its own veth pair, and its input chain
 * (nftables) drops every new connection made to it. Made by {@link isolatedClient}; `close()`
 * removes the namespace and its veth pair.
 */
export interface IsolatedClient {
  /** The namespace's name (`sheepdog-...`). */
  readonly name: string;
  /** The client's address, which nothing outside its namespace can connect to. */
  readonly address: string;
  /** The head node's sshd as the client reaches it. */
  readonly sshHost: string;
  /** Runs `command` inside the namespace (as this process's user, root) to its end. */
  run(
    command: string,
    args: string[],
    options?: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number },
  ): Promise<IsolatedRun>;
  /** Starts `command` inside the namespace and returns its process. */
  start(command: string, args: string[], env?: NodeJS.ProcessEnv): ReturnType<typeof spawn>;
  close(): Promise<void>;
}

const INPUT_RULES = `table inet sheepdog_isolation {
  chain input {
    type filter hook input priority 0; policy drop;
    iif lo accept
    ct state established,related accept
  }
}
`;

async function ip(...args: string[]): Promise<void> {
  await run("ip", args);
}

/** A /30 of 10.201.0.0/16 that no interface of this machine uses yet. */
async function freeSubnet(): Promise<number> {
  const { stdout } = await run("ip", ["-4", "-o", "addr", "show"]);
  for (let tries = 0; tries < 100; tries++) {
    const block = 4 * Math.floor(Math.random() * 16_000);
    const third = Math.floor(block / 256);
    const fourth = block % 256;
    if (third >= 255) continue;
    if (!stdout.includes(`10.201.${third}.${fourth + 1}/`)) return block;
  }
  throw new Error("no free /30 in 10.201.0.0/16 for an isolated client");
}

function addressIn(block: number, host: 1 | 2): string {
  return `10.201.${Math.floor(block / 256)}.${(block % 256) + host}`;
}

/** Pipes into nft inside the namespace. */
function loadRules(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("ip", ["netns", "exec", name, "nft", "-f", "-"], {
      stdio: ["pipe", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (status) =>
      status === 0 ? resolve() : reject(new Error(`nft failed (${status}): ${stderr}`)),
    );
    child.stdin.end(INPUT_RULES);
  });
}

/**
 * Makes an isolated client (see {@link IsolatedClient}); needs root and the test cluster's
 * isolation facts (`cluster.isolation`, from `up`).
 */
export async function isolatedClient(facts: IsolationFacts): Promise<IsolatedClient> {
  const tag = randomBytes(4).toString("hex");
  const name = `sheepdog-${tag}`;
  const outside = `sdh${tag}`;
  const inside = `sdc${tag}`;
  const block = await freeSubnet();
  const address = addressIn(block, 2);
  await ip("netns", "add", name);
  try {
    await ip("link", "add", outside, "type", "veth", "peer", "name", inside);
    await ip("link", "set", inside, "netns", name);
    await ip("addr", "add", `${addressIn(block, 1)}/30`, "dev", outside);
    await ip("link", "set", outside, "up");
    const within = (...args: string[]) => ip("netns", "exec", name, "ip", ...args);
    await within("link", "set", "lo", "up");
    await within("addr", "add", `${address}/30`, "dev", inside);
    await within("link", "set", inside, "up");
    await within("route", "add", "default", "via", addressIn(block, 1));
    await loadRules(name);
  } catch (error) {
    await ip("netns", "delete", name).catch(() => {});
    await ip("link", "delete", outside).catch(() => {});
    throw error;
  }
  const start = (command: string, args: string[], env?: NodeJS.ProcessEnv) =>
    spawn("ip", ["netns", "exec", name, command, ...args], {
      env: env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
  return {
    name,
    address,
    sshHost: facts.sshHost,
    start,
    run(command, args, options = {}) {
      const child = start(command, args, options.env);
      let stdout = "";
      let stderr = "";
      child.stdout?.setEncoding("utf8").on("data", (text: string) => {
        stdout += text;
      });
      child.stderr?.setEncoding("utf8").on("data", (text: string) => {
        stderr += text;
      });
      child.stdin?.end(options.input ?? "");
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
      return new Promise((resolve, reject) => {
        child.on("error", reject);
        child.on("close", (status) => {
          clearTimeout(timer);
          resolve({ status, stdout, stderr });
        });
      });
    },
    async close() {
      await ip("netns", "delete", name).catch(() => {});
    },
  };
}
