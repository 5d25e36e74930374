/** The PostgreSQL that `tooling/testcluster/postgres-up` starts on 127.0.0.1. */
export interface PostgresFacts {
  /** Where it listens: `127.0.0.1` (loopback only). */
  host: string;
  port: number;
  /** The tests' role: logs in with a password over TCP, may create databases (CREATEDB). */
  user: string;
  /** The tests' database, owned by {@link user}: tests make a throwaway schema or database. */
  database: string;
  /**
   * The file that holds the role's password (one line), readable by root alone (mode 600). Read
   * it in the test; never print it.
   */
  passwordFile: string;
  /** The PostgreSQL major version (15: Debian 12's `postgresql`). */
  version: number;
  /** The Debian cluster, for `pg_ctlcluster`: `"15/main"`. */
  cluster: string;
}
