import type { Remote } from "@sheepdog/contracts";
import type { SheepdogServer } from "@sheepdog/server";
import type { TunnelRemote } from "./relay.js";
import { Relay } from "./relay.js";

/** A relay's URL for the workers, what its probe of the direct route found, and its release. */
export interface RelayUse {
  url: string;
  direct: string | null;
  /** Lets go of the relay: its last user stops it. Idempotent. */
  release(): Promise<void>;
}

interface Shared {
  relay: Relay;
  opened: Promise<{ url: string; direct: string | null }>;
  users: number;
}

/**
 * The relays running, by SSH connection, then by server port and the direct route probed. A
 * relay holds one of its connection's sessions for as long as it runs (OpenSSH allows 10 by
 * default, `MaxSessions`), so the requests one server serves over one connection share one:
 * with a relay each, a stream with eight windows in flight waited for ever for a session to
 * submit the eighth window's job.
 */
const running = new WeakMap<Remote, Map<string, Shared>>();

/**
 * The relay on `remote`'s head node for `server` (started, or shared with the requests already
 * using it), with `direct` (`host:port`) probed when it starts.
 */
export async function useRelay(
  remote: TunnelRemote,
  server: SheepdogServer,
  direct: string | undefined,
): Promise<RelayUse> {
  const relays = relaysOn(remote);
  const key = `${server.port} ${direct ?? ""}`;
  const shared = relays.get(key) ?? start(relays, key, new Relay(remote, server), direct);
  shared.users += 1;
  let opened: { url: string; direct: string | null };
  try {
    opened = await shared.opened;
  } catch (error) {
    shared.users -= 1;
    throw error;
  }
  // Each user's handle on the server accepts the route: a handle's routes go when it closes.
  const stopRoute = server.acceptRoute(new URL(opened.url).host);
  let released: Promise<void> | undefined;
  const release = () => {
    released ??= releaseRelay(relays, key, shared, stopRoute);
    return released;
  };
  return { ...opened, release };
}

/** The relays running over `remote`'s connection, by key (see {@link useRelay}). */
function relaysOn(remote: Remote): Map<string, Shared> {
  let relays = running.get(remote);
  if (!relays) {
    relays = new Map();
    running.set(remote, relays);
  }
  return relays;
}

function start(
  relays: Map<string, Shared>,
  key: string,
  relay: Relay,
  direct: string | undefined,
): Shared {
  const shared: Shared = { relay, users: 0, opened: relay.open(direct) };
  relays.set(key, shared);
  shared.opened.catch(async () => {
    if (relays.get(key) === shared) relays.delete(key);
    await relay.close();
  });
  return shared;
}

async function releaseRelay(
  relays: Map<string, Shared>,
  key: string,
  shared: Shared,
  stopRoute: () => void,
): Promise<void> {
  shared.users -= 1;
  if (shared.users === 0) {
    if (relays.get(key) === shared) relays.delete(key);
    await shared.relay.close();
  }
  stopRoute();
}
