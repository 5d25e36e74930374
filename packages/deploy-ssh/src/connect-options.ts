import type { SshSettings } from "@sheepdog/contracts";
import type { SshClientLike } from "./client-like.js";

/**
 * Options of {@link connect}. The `ssh*` names are those of Sheepdog's configuration
 * (`sshPort` is `SHEEPDOG_SSH_PORT` there, and so on).
 */
export interface ConnectOptions extends SshSettings {
  /** The host to connect to: a name, an address, or a `Host` alias from ~/.ssh/config. */
  host: string;
  /**
   * How long connecting (through any jump hosts, up to a logged-in session) may take.
   * @default the config's `ConnectTimeout`, else 20000
   */
  connectTimeoutMs?: number;
  /**
   * How often to check that an idle connection is alive; after 3 unanswered checks (or the
   * config's `ServerAliveCountMax`) the connection counts as lost. 0 turns this off.
   * @default the config's `ServerAliveInterval`, else 15000
   */
  keepaliveIntervalMs?: number;
  /**
   * How many commands run at once over the connection; more wait their turn. OpenSSH allows
   * 10 sessions per connection (`MaxSessions`), one of them kept for SFTP; if a server allows
   * fewer, Sheepdog lowers this when the server refuses a session.
   * @default 8
   */
  maxConcurrentCommands?: number;
  /**
   * A time limit for every command that does not set `timeoutMs` itself.
   * @default none
   */
  commandTimeoutMs?: number;
  /**
   * An ssh2 `Client` that is already connected and authenticated. Sheepdog then uses it as it
   * is (no ~/.ssh/config, no host key check, no reconnect: those are yours), and `close()`
   * leaves it open for you to end.
   */
  client?: SshClientLike;
  /** Aborting stops connecting and rejects with `ABORTED`. */
  signal?: AbortSignal;
}
