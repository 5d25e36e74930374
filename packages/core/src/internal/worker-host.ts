import { lookup, lookupService } from "node:dns/promises";
import { hostname } from "node:os";
import type { Cluster } from "@sheepdog/contracts";
import type { ResolvedRunSettings } from "../config.js";

/**
 * Whether the cluster's tasks run on this machine: its remote is this machine, which the
 * Remote contract names `"local"`. Then the server listens on 127.0.0.1 and workers reach it
 * there; otherwise it listens on every interface, for the cluster's nodes.
 */
export function runsOnThisMachine(cluster: Cluster | undefined): boolean {
  return cluster?.remote.name === "local";
}

/** The name workers reach this machine by. */
export async function workerHost(
  settings: ResolvedRunSettings,
  cluster: Cluster | undefined,
): Promise<string> {
  if (settings.localhost) return settings.localhost;
  return runsOnThisMachine(cluster) ? "127.0.0.1" : localFqdn();
}

let fqdn: Promise<string> | undefined;
/** This machine's fully qualified name, as Python's socket.getfqdn() finds it. */
function localFqdn(): Promise<string> {
  fqdn ??= (async () => {
    const name = hostname();
    if (name.includes(".")) return name;
    try {
      const { address } = await lookup(name);
      const { hostname: full } = await lookupService(address, 0);
      return full.includes(".") ? full : name;
    } catch {
      return name;
    }
  })();
  return fqdn;
}
