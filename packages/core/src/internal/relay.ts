import type { ExecResult, Remote, ReverseTunnel } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { SheepdogServer } from "@sheepdog/server";
import type { RelayFacts } from "@sheepdog/worker-py";
import { parseRelayFacts, relayCommand } from "@sheepdog/worker-py";
import { source } from "./source.js";

const START_TIMEOUT_MS = 30_000;
const RESTART_FIRST_MS = 500;
const RESTART_MAX_MS = 10_000;
const RELAY_FLUSH_MS = 200;

/** A remote that can forward a port of its loopback back to this machine. */
export type TunnelRemote = Remote & Required<Pick<Remote, "tunnelBack">>;

/** Whether `remote` can forward a port of its loopback back to this machine. */
export function canTunnel(remote: Remote): remote is TunnelRemote {
  return typeof remote.tunnelBack === "function";
}

/**
 * The interpreter the relay and the route check run with on the head node: `python3` on the
 * login PATH (the jobs' `shell` is for the nodes, and may not exist on the head node).
 */
export const HEAD_NODE_PYTHON = "python3";

/** One running relay process and the tunnel it carries connections to. */
interface Running {
  tunnel: ReverseTunnel;
  stop: AbortController;
  /** Settles when the relay process or its tunnel has ended. */
  gone: Promise<unknown>;
}

/**
 * A relay on the head node for one server: a remote port forward from the head node's
 * loopback to the server, and the relay program (run over the same SSH connection) that
 * carries the workers' connections to it. When either goes (the connection dropped, the
 * process died) it is started again, on the same port, until closed.
 */
export class Relay {
  #running: Running | undefined;
  #port = 0;
  #closed = false;
  #stopRoute: (() => void) | undefined;
  /** The route the server accepts for it (`host:port`). */
  #authority: string | undefined;
  #restarting: Promise<void> | undefined;

  constructor(
    private readonly remote: TunnelRemote,
    private readonly server: SheepdogServer,
  ) {}

  /**
   * Starts the relay; with `direct` (`host:port`), it also probes the direct route. Resolves
   * with the relay's URL for the workers and what the probe found.
   */
  async open(direct?: string): Promise<{ url: string; direct: string | null }> {
    const facts = await this.#start(direct);
    const authority = `${facts.host}:${facts.port}`;
    this.#stopRoute = this.server.acceptRoute(authority);
    this.#authority = authority;
    return { url: `http://${authority}`, direct: facts.direct };
  }

  /**
   * Starts the relay again for workers given `authority` (`host:port`) by an earlier process:
   * on its port, with the server accepting that route.
   */
  async reopen(authority: string): Promise<void> {
    this.#port = Number(authority.slice(authority.lastIndexOf(":") + 1));
    await this.#start();
    this.#stopRoute = this.server.acceptRoute(authority);
    this.#authority = authority;
  }

  async #start(direct?: string): Promise<RelayFacts> {
    const tunnel = await this.remote.tunnelBack(this.server.port);
    const stop = new AbortController();
    let output = "";
    let announce!: (facts: RelayFacts) => void;
    const announced = new Promise<RelayFacts>((resolve) => {
      announce = resolve;
    });
    const command = relayCommand({
      python: HEAD_NODE_PYTHON,
      listenPort: this.#port,
      tunnelPort: tunnel.remotePort,
      ...(direct !== undefined && { direct }),
    });
    const run = this.remote.exec(command, {
      signal: stop.signal,
      onStdout: (chunk) => {
        output += new TextDecoder().decode(chunk);
        const line = output.includes("\n") ? output.slice(0, output.indexOf("\n")) : undefined;
        const facts = line === undefined ? undefined : parseRelayFacts(line);
        if (facts) announce(facts);
      },
    });
    try {
      const facts = await this.#started(announced, run);
      this.#port = facts.port;
      this.#running = { tunnel, stop, gone: Promise.race([run.catch(() => {}), tunnel.ended]) };
      void this.#running.gone.then(() => this.#lost());
      return facts;
    } catch (error) {
      stop.abort();
      await tunnel.close();
      throw error;
    }
  }

  /** The relay's facts once it listens; rejects when it ends (or is late) before that. */
  #started(announced: Promise<RelayFacts>, run: Promise<ExecResult>): Promise<RelayFacts> {
    return new Promise<RelayFacts>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(this.#error(`it did not start within ${START_TIMEOUT_MS / 1000} s`)),
        START_TIMEOUT_MS,
      );
      const settle = (): void => clearTimeout(timer);
      void announced.then((facts) => {
        settle();
        resolve(facts);
      });
      run.then(
        (result) => {
          settle();
          const detail = result.stderr.trim().split("\n").at(-1) ?? "";
          const status = result.code ?? result.signal;
          reject(this.#error(`it ended with exit status ${status}${detail ? `: ${detail}` : ""}`));
        },
        (error: unknown) => {
          settle();
          reject(error);
        },
      );
    });
  }

  #error(why: string): SheepdogError {
    return new SheepdogError(
      "REMOTE_FAILED",
      source,
      `The relay on ${this.remote.name} (${HEAD_NODE_PYTHON}) could not start: ${why}. Check that ${HEAD_NODE_PYTHON} runs there, or set connect to "direct".`,
    );
  }

  /** The relay or its tunnel went: starts it again, on the same port, until closed. */
  #lost(): void {
    if (this.#closed || this.#restarting) return;
    const previous = this.#running;
    this.#running = undefined;
    this.#restarting = (async () => {
      previous?.stop.abort();
      await previous?.tunnel.close();
      for (
        let delay = RESTART_FIRST_MS;
        !this.#closed;
        delay = Math.min(delay * 2, RESTART_MAX_MS)
      ) {
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
        if (this.#closed) return;
        try {
          await this.#start();
          return;
        } catch {
          // The connection is still down, or the old relay still holds the port: again.
        }
      }
    })().finally(() => {
      this.#restarting = undefined;
    });
  }

  /**
   * Stops the relay and its tunnel, once the answers under way have passed (the tunnel lets
   * them finish for a few seconds); then the server stops accepting its route. Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#restarting;
    const running = this.#running;
    this.#running = undefined;
    if (running) {
      await running.tunnel.close();
      // What the tunnel delivered last may still be in the relay, on its way to a worker; a
      // relay whose route brought the server no request (the workers went direct) holds none.
      const carried =
        this.#authority === undefined || this.server.routeRequests(this.#authority) > 0;
      if (carried) await new Promise((resolve) => setTimeout(resolve, RELAY_FLUSH_MS));
      running.stop.abort();
    }
    this.#stopRoute?.();
    this.#stopRoute = undefined;
  }
}
