import { SheepdogError } from "@sheepdog/contracts";

export const source = "store-postgres";

/** The SQLSTATE of a PostgreSQL error ("23505", "57P01", ...), or undefined. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Node's errno code of a socket error ("ECONNREFUSED", ...), or undefined. */
function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("E") && !/^[0-9]/.test(code)
    ? code
    : undefined;
}

/** SQLSTATEs after which the same work, tried again, can succeed. */
const transientStates = new Set([
  "57P01", // admin_shutdown: the backend was terminated (pg_terminate_backend, a fast shutdown)
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now: starting up or shutting down
  "53300", // too_many_connections (also a database's CONNECTION LIMIT)
  "40001", // serialization_failure
  "40P01", // deadlock_detected
]);
const transientErrnos = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
]);
/** What node-postgres says when the connection ends under a query or before one. */
const lostConnection =
  /Connection terminated|not queryable|timeout exceeded when trying to connect|Connection ended|connection timeout/i;

/**
 * Whether `error` says that the database could not be reached or dropped the connection (or
 * ended a transaction to break a deadlock): the work can be tried again on a new connection.
 */
export function isTransient(error: unknown): boolean {
  const state = sqlState(error);
  if (state !== undefined) return state.startsWith("08") || transientStates.has(state);
  const errno = errnoCode(error);
  if (errno !== undefined) return transientErrnos.has(errno);
  return error instanceof Error && lostConnection.test(error.message);
}

/** The message of what node-postgres threw, for ours. */
function said(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\.$/, "");
}

/**
 * Turns whatever node-postgres or Kysely threw into a SheepdogError that names the database
 * (`name` holds no password): STORE_IO for what the server or the network refused, INTERNAL for
 * anything else (a bug). A SheepdogError passes through unchanged.
 */
export function storeError(error: unknown, name: string): SheepdogError {
  if (SheepdogError.isInstance(error)) return error;
  const state = sqlState(error);
  const detail = { sqlState: state };
  if (state === "28P01" || state === "28000") {
    return new SheepdogError(
      "STORE_IO",
      source,
      `${name} refused the login (${said(error)}). Check the user, and give its password in PGPASSWORD or a line of ~/.pgpass (mode 0600).`,
      { cause: error, detail },
    );
  }
  if (state === "3D000") {
    return new SheepdogError(
      "STORE_IO",
      source,
      `${name} does not exist (${said(error)}). Create it (createdb), or name another database.`,
      { cause: error, detail },
    );
  }
  if (state === "42501") {
    return new SheepdogError(
      "STORE_IO",
      source,
      `${name} refused a change for want of privileges (${said(error)}). Ask its owner to grant them (the schema needs CREATE and USAGE, its tables SELECT, INSERT, UPDATE and DELETE), or use another schema.`,
      { cause: error, detail },
    );
  }
  if (state === "53100") {
    return new SheepdogError(
      "STORE_IO",
      source,
      `${name} cannot grow: its disk is full (${said(error)}). Free some space on the database server.`,
      { cause: error, detail },
    );
  }
  if (isTransient(error)) {
    return new SheepdogError(
      "STORE_IO",
      source,
      `${name} could not be reached (${said(error)}). Check that PostgreSQL is running and reachable, or raise reconnectTimeout.`,
      { cause: error, detail },
    );
  }
  if (state !== undefined || errnoCode(error) !== undefined) {
    return new SheepdogError(
      "STORE_IO",
      source,
      `${name} could not be used (${said(error)}). Check the database's log and the connection settings.`,
      { cause: error, detail },
    );
  }
  return new SheepdogError(
    "INTERNAL",
    source,
    `Unexpected failure while using ${name}: ${said(error)}. This is a bug in @sheepdog/store-postgres: please report it.`,
    { cause: error },
  );
}

export function closedError(): SheepdogError {
  return new SheepdogError(
    "CLOSED",
    source,
    "This store is closed. Open a new one with postgresStore().",
  );
}

export function requestNotFound(id: unknown): SheepdogError {
  return new SheepdogError(
    "REQUEST_NOT_FOUND",
    source,
    `There is no request ${String(id)} in this database. Check the id, and that it is the database and schema the request was made in.`,
  );
}

export function taskNotFound(id: number, index: unknown, tasks: number): SheepdogError {
  const range = tasks === 0 ? "it has no tasks" : `its tasks are 0 to ${tasks - 1}`;
  return new SheepdogError(
    "TASK_NOT_FOUND",
    source,
    `Request ${id} has no task ${String(index)}: ${range}.`,
  );
}

export function invalidInput(message: string): SheepdogError {
  return new SheepdogError("INVALID_INPUT", source, message);
}

export function configInvalid(message: string): SheepdogError {
  return new SheepdogError("CONFIG_INVALID", source, message);
}
