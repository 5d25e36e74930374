// Opens a store on a path, makes one call, and prints how it went as JSON:
// { ok: true } or { code, message }. Used by bad-input.test.ts to run as another user.
import { sqliteStore } from "@sheepdog/store-sqlite";

const store = sqliteStore({ dbfile: process.argv[2] });
try {
  await store.listRequests();
  process.stdout.write(JSON.stringify({ ok: true }));
} catch (error) {
  process.stdout.write(JSON.stringify({ code: error.code, message: error.message }));
} finally {
  await store.close();
}
