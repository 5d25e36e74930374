// A program that maps into a PostgreSQL database, for the tests of several clients at once:
//   node map-process.mjs value <url> <tag> <calls>    createSheepdog({ store: postgresStore({ connectionString: url }) })
//   node map-process.mjs default <url> <tag> <calls>  the default instance: map(f, args, { host: "local", dbfile: url })
// It runs on this machine's local scheduler and prints {"request": id, "results": [...]} on stdout.
// It imports the built packages (core, local, this one) by path: run their builds first.
const [mode, url, tag, calls] = process.argv.slice(2);
const core = await import(new URL("../../../core/dist/index.js", import.meta.url).href);
const { localRemote, localScheduler } = await import(
  new URL("../../../local/dist/index.js", import.meta.url).href
);
const { postgresStore } = await import(new URL("../../dist/index.js", import.meta.url).href);

const f = core.py`
def f(x):
    import time
    time.sleep(0.02)
    return [tag, x * x]
`;
const args = Array.from({ length: Number(calls) }, (_, i) => [i]);
let results;
let request;
if (mode === "value") {
  const store = postgresStore({ connectionString: url });
  const sheepdog = core.createSheepdog({
    store,
    cluster: { scheduler: localScheduler({ concurrency: 2 }), remote: localRemote() },
  });
  request = await sheepdog.mapAsync(f, args, { ns: { tag } });
  results = (await sheepdog.getResults(request, { block: true })).map(([, result]) => result);
  await sheepdog.close();
  await store.close();
} else {
  const config = { host: "local", dbfile: url, concurrency: 2 };
  request = await core.mapAsync(f, args, config, { ns: { tag } });
  results = (await core.getResults(request, { dbfile: url, block: true })).map(([, r]) => r);
  await core.shutdown();
}
process.stdout.write(`${JSON.stringify({ request, results })}\n`);
