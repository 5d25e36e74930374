import type { StoreContractContext } from "@sheepdog/contracts/testing";
import { describeStoreContract } from "@sheepdog/contracts/testing";
import { describeCluster } from "@sheepdog/testcluster";
import { afterAll } from "vitest";
import { dropSchemas, testPostgres, throwawaySchema } from "./__fixtures__/postgres.js";
import { postgresStore } from "./postgres-store.js";

describeCluster("postgresStore on the test cluster's PostgreSQL", (cluster) => {
  const postgres = testPostgres(cluster);
  // Each test's data is a schema of its own, made on its first open and dropped at the end.
  const schemas = new WeakMap<StoreContractContext, string>();
  const made: string[] = [];
  afterAll(async () => {
    const admin = postgres.admin();
    try {
      await dropSchemas(admin, made);
    } finally {
      await admin.end();
    }
  });

  describeStoreContract(
    "postgres",
    (ctx) => {
      let schema = schemas.get(ctx);
      if (schema === undefined) {
        schema = throwawaySchema("contract");
        schemas.set(ctx, schema);
        made.push(schema);
      }
      return postgresStore({ connectionString: postgres.url(), schema });
    },
    { heavyTimeout: 300_000 },
  );
});
