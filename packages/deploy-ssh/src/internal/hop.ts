import type { Identity } from "./identities.js";

/** Everything needed to reach one SSH server, after ~/.ssh/config. */
export interface Hop {
  /** The host as given (a config alias or a name). */
  alias: string;
  /** The name or address to connect to (config `HostName`, else `alias`). */
  hostName: string;
  port: number;
  user: string;
  /** Key files to offer after the agent. */
  identities: Identity[];
  /** The agent's socket, when there is one. */
  agent: string | undefined;
  /** Offer only the agent's keys that match `identities` (`IdentitiesOnly yes`). */
  identitiesOnly: boolean;
  /** The expanded ProxyCommand, when the host is reached through one. */
  proxyCommand?: string;
  /** The hop this one is reached through (ProxyJump), when there is one. */
  jump?: Hop;
  /** known_hosts files to check; the first is where the fix goes. */
  knownHostsFiles: string[];
  /** The name looked up in known_hosts (`host`, `[host]:port`, or the HostKeyAlias). */
  hostKeyName: string;
}

/** `user@host:port` for messages. */
export function hopName(hop: Pick<Hop, "user" | "hostName" | "port">): string {
  return `${hop.user}@${hop.hostName}:${hop.port}`;
}
