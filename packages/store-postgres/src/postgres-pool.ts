/**
 * The part of a node-postgres `Pool` that this store uses (Kysely's `PostgresPool`). It is a
 * structural type, so that an injected pool need not come from the same copy of `pg`.
 */
export interface PostgresPool {
  connect(): Promise<PostgresPoolClient>;
  end(): Promise<void>;
}

/** The part of a node-postgres `PoolClient` that this store uses. */
export interface PostgresPoolClient {
  query<R>(
    sql: string,
    parameters: ReadonlyArray<unknown>,
  ): Promise<{ rows: R[]; rowCount?: number | null; command?: string }>;
  release(destroy?: boolean): void;
  /**
   * node-postgres' `on("error")`: when present, the store listens, so that a connection the
   * server drops between two queries does not crash the process with an unhandled `error`.
   */
  on?(event: "error", listener: (error: Error) => void): unknown;
}
