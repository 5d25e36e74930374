import { SheepdogError, shellQuote } from "@sheepdog/contracts";
import { FilteredAgent } from "./filtered-agent.js";
import { type Hop, hopName } from "./hop.js";
import { source } from "./source.js";

/** One way to authenticate, in the form ssh2's `authHandler` takes. */
export interface AuthMethod {
  /** What it is, for messages: the agent, or a key file's path. */
  label: string;
  auth:
    | { type: "agent"; username: string; agent: string | FilteredAgent }
    | { type: "publickey"; username: string; key: Buffer };
}

/** What the server said while keys were offered, for the message if it refuses them all. */
export interface AuthAttempt {
  /** The labels of the methods offered, in order. */
  tried: string[];
  /** The methods the server says it accepts, once it has said. */
  serverMethods?: string[];
  /** Why the agent could not be used, when it could not. */
  agentFailure?: string;
}

/** The methods to offer, in order: the agent (filtered with `IdentitiesOnly`), then key files. */
export function authMethods(hop: Hop): AuthMethod[] {
  const methods: AuthMethod[] = [];
  if (hop.agent && hop.identitiesOnly) {
    const allowed = hop.identities.flatMap((identity) =>
      identity.publicKey ? [identity.publicKey] : [],
    );
    methods.push({
      label: `the SSH agent's keys that match them (SSH_AUTH_SOCK=${hop.agent}, IdentitiesOnly)`,
      auth: { type: "agent", username: hop.user, agent: new FilteredAgent(hop.agent, allowed) },
    });
  } else if (hop.agent) {
    methods.push({
      label: `the SSH agent (SSH_AUTH_SOCK=${hop.agent})`,
      auth: { type: "agent", username: hop.user, agent: hop.agent },
    });
  }
  for (const identity of hop.identities) {
    if (identity.privateKey) {
      methods.push({
        label: identity.path,
        auth: { type: "publickey", username: hop.user, key: identity.privateKey },
      });
    }
  }
  return methods;
}

/** Advice for keys that need a passphrase (never asked for), or "" when there are none. */
function passphraseAdvice(hop: Hop): string {
  const encrypted = hop.identities.filter((identity) => identity.encrypted);
  if (encrypted.length === 0) return "";
  const paths = encrypted.map((identity) => identity.path);
  const agentState = hop.agent
    ? "and the SSH agent does not hold it"
    : "and no SSH agent is running (SSH_AUTH_SOCK is not set, or names no socket)";
  const start = hop.agent ? "" : 'start an agent (eval "$(ssh-agent)") and ';
  return ` The key ${paths.join(", ")} is protected by a passphrase, which Sheepdog never asks for, ${agentState}: ${start}add the key to the agent with "ssh-add ${shellQuote(paths[0] ?? "")}".`;
}

/** Refuses before connecting when there is nothing to authenticate with. */
export function noMethodsError(hop: Hop): SheepdogError {
  const advice = passphraseAdvice(hop);
  if (advice) {
    return new SheepdogError("SSH_AUTH", source, `No usable key for ${hopName(hop)}.${advice}`);
  }
  return new SheepdogError(
    "SSH_AUTH",
    source,
    `No SSH key for ${hopName(hop)}: no SSH agent (SSH_AUTH_SOCK), no sshKeyfile, no IdentityFile, and none of ~/.ssh/id_ed25519, id_ecdsa, id_rsa. Create a key with "ssh-keygen -t ed25519" and install it with "ssh-copy-id -p ${hop.port} ${hop.user}@${hop.hostName}", or set sshKeyfile.`,
  );
}

/** The server refused every key offered (or accepts no keys at all). */
export function keysRefused(hop: Hop, attempt: AuthAttempt, cause: Error): SheepdogError {
  const { serverMethods, agentFailure } = attempt;
  let message = `${hopName(hop)} refused every key Sheepdog offered (${attempt.tried.join(", ") || "none"}).`;
  if (serverMethods && !serverMethods.includes("publickey")) {
    message = `${hopName(hop)} does not accept keys (it offers ${serverMethods.join(", ") || "nothing"}); Sheepdog authenticates with keys only.`;
  }
  if (agentFailure) message += ` The SSH agent could not be used: ${agentFailure}.`;
  message += ` Install your public key in ~/.ssh/authorized_keys on ${hop.hostName} ("ssh-copy-id -p ${hop.port} ${hop.user}@${hop.hostName}"), or set sshKeyfile.`;
  message += passphraseAdvice(hop);
  return new SheepdogError("SSH_AUTH", source, message, { cause });
}

/** The server stopped listening (`MaxAuthTries`) before every key was offered. */
export function tooManyKeys(hop: Hop, attempt: AuthAttempt, cause: Error): SheepdogError {
  return new SheepdogError(
    "SSH_AUTH",
    source,
    `${hopName(hop)} stopped accepting keys after too many failures (its MaxAuthTries), before Sheepdog had tried them all (${attempt.tried.join(", ")}). The SSH agent probably holds many other keys: add "IdentitiesOnly yes" and an "IdentityFile" for this host to your SSH config, or remove keys from the agent (ssh-add -d).`,
    { cause },
  );
}
