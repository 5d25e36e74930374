import { SheepdogError } from "@sheepdog/contracts";
import type { SftpLike, SshClientLike } from "../client-like.js";
import { source } from "./source.js";

/** A connection as the remote sees it: a client and how to let it go. */
export interface OpenConnection {
  client: SshClientLike;
  dispose(): void;
}

/** One connection while the remote uses it. */
export interface ConnectionState {
  open: OpenConnection;
  alive: boolean;
  lastError: Error | undefined;
  sftp: Promise<SftpLike> | undefined;
  /** Resolves once the client has closed. */
  closed: Promise<void>;
}

/**
 * Watches a newly opened connection. When its client closes, what it holds (jump
 * connections, ProxyCommands, the SFTP session) goes with it and `onGone` is called.
 */
export function adoptConnection(
  open: OpenConnection,
  onGone: (state: ConnectionState) => void,
): ConnectionState {
  let markClosed!: () => void;
  const state: ConnectionState = {
    open,
    alive: true,
    lastError: undefined,
    sftp: undefined,
    closed: new Promise((resolve) => {
      markClosed = resolve;
    }),
  };
  const onError = (error: Error): void => {
    state.lastError = error;
  };
  const onClose = (): void => {
    state.alive = false;
    open.dispose();
    state.sftp = undefined;
    open.client.removeListener("error", onError);
    open.client.removeListener("close", onClose);
    // Keep a listener: an "error" with none would crash the process.
    open.client.on("error", () => {});
    onGone(state);
    markClosed();
  };
  open.client.on("error", onError);
  open.client.on("close", onClose);
  return state;
}

/** The connection to `name` went while `what` was under way. */
export function lostError(name: string, state: ConnectionState, what: string): SheepdogError {
  const detail = state.lastError ? ` (${state.lastError.message})` : "";
  return new SheepdogError(
    "SSH_CONNECT",
    source,
    `The connection to ${name} was lost during ${what}${detail}. Check the network and the host; the next call reconnects.`,
    { cause: state.lastError },
  );
}
