/** The PostgreSQL that `tooling/testcluster/postgres-up` starts on 127.0.0.1. */
export interface PostgresFacts {
  host: string;
  port: number;
  user: string;
  database: string;
}
