/**
 * The SQL of the store, for one schema. The schema's name was checked to be a plain identifier
 * (see options.ts), so it is quoted and put in the text; values are always parameters.
 *
 * Every argument tuple is a row of `args`, keyed by (request_id, idx): task `idx` of its request.
 * A task's report is the row of `reports` with the same key, so that the primary key decides
 * which of two racing reports is the first, whichever process sent them.
 */
export interface Statements {
  schema: string;
  requestShape: string;
  insertRequest: string;
  findByToken: string;
  setTasks: string;
  insertArgs: string;
  requestRow: string;
  requestCounts: string;
  requestMetaForUpdate: string;
  setMeta: string;
  listRequests: string;
  args: string;
  packedArgs: string;
  largeArg: string;
  unreported: string;
  writeReports: string;
  reportsOf: string;
  deleteReports: string;
  addCounts: string;
  packedResults: string;
  largeResult: string;
  errors: string;
  taskFacts: string;
  logs: string;
}

/** Values up to this size are read packed into one buffer per slice; larger ones on their own. */
export const SMALL_VALUE_BYTES = 1024;

/**
 * A value in a packed read: its length as 4 bytes (big-endian), then its bytes; a larger value
 * than SMALL_VALUE_BYTES is only the length -2, and is read on its own (see values.ts).
 */
const framed = (column: string) =>
  `CASE WHEN length(${column}) <= ${SMALL_VALUE_BYTES} THEN int4send(length(${column})) || ${column} ELSE int4send(-2) END`;

export function statements(schemaName: string): Statements {
  const s = `"${schemaName}"`;
  const range = "request_id = $1 AND idx >= $2 AND idx < $3";
  return {
    schema: s,
    requestShape: `SELECT tasks FROM ${s}.requests WHERE id = $1`,
    insertRequest: `INSERT INTO ${s}.requests (func, ns, tasks, token_hash, created_at, meta) VALUES ($1, $2, 0, $3, $4, $5) RETURNING id`,
    findByToken: `SELECT id FROM ${s}.requests WHERE token_hash = $1`,
    setTasks: `UPDATE ${s}.requests SET tasks = $1 WHERE id = $2`,
    // One statement per batch: the values travel as one binary bytea with their lengths and
    // offsets (1-based), and are cut apart on the server (a bytea[] parameter would travel as
    // hex text, twice the bytes and far slower to parse).
    insertArgs: `INSERT INTO ${s}.args (request_id, idx, value)
      SELECT $1, $2 + u.i - 1, substring($3::bytea FROM u.off FOR u.len)
      FROM unnest($4::int[], $5::int[]) WITH ORDINALITY AS u(len, off, i)`,
    requestRow: `SELECT id, func, ns, tasks, token_hash, created_at::float8 AS created_at, meta FROM ${s}.requests WHERE id = $1`,
    requestCounts: `SELECT tasks, results, errors FROM ${s}.requests WHERE id = $1`,
    requestMetaForUpdate: `SELECT meta FROM ${s}.requests WHERE id = $1 FOR UPDATE`,
    setMeta: `UPDATE ${s}.requests SET meta = $1 WHERE id = $2`,
    listRequests: `SELECT id, created_at::float8 AS created_at, meta, tasks, results, errors FROM ${s}.requests ORDER BY id`,
    args: `SELECT value FROM ${s}.args WHERE request_id = $1 AND idx >= $2 AND idx < $3 ORDER BY idx`,
    // Reads of many rows as one bytea of framed values, in order: one ordered aggregate per
    // slice, and one buffer on the client instead of a Buffer per row.
    packedArgs: `SELECT string_agg(${framed("value")}, '\\x'::bytea ORDER BY idx) AS args
      FROM ${s}.args WHERE ${range}`,
    largeArg: `SELECT value FROM ${s}.args WHERE request_id = $1 AND idx = $2`,
    unreported: `SELECT coalesce(array_agg(i ORDER BY i), '{}') AS missing
      FROM generate_series($2::int, $3::int - 1) AS i
      WHERE NOT EXISTS (SELECT 1 FROM ${s}.reports r WHERE r.request_id = $1 AND r.idx = i)`,
    // The reports of a flush in one statement: their results travel as one bytea with lengths
    // (-1 for an error) and offsets, as createRequest's arguments do, sorted by key on the client
    // (so that two writers never wait on each other's keys in opposite orders); the first report
    // of a task wins by the primary key, and the counts grow by what was inserted, at once. It
    // answers how many were inserted, and which ones only when not all of them ($7: how many).
    //
    // A real report replaces a provisional error (the WHERE of DO UPDATE); a replaced row has
    // the updating transaction in xmax, an inserted one 0, and the counts move by what replaced
    // what ($8: which errors are provisional, or null when none is).
    //
    // The facts of the reports come in $9 to $16, all null when no report has any: their logs
    // as one bytea with lengths (-1 for none) and offsets, as the results.
    writeReports: `WITH ins AS (
        INSERT INTO ${s}.reports AS r (request_id, idx, result, error, provisional,
          started_at, ended_at, host, peak_memory_bytes, attempt, log)
        SELECT u.request_id, u.idx,
               CASE WHEN u.len >= 0 THEN substring($5::bytea FROM u.off FOR u.len) END, u.error,
               coalesce(u.provisional, false),
               u.started_at, u.ended_at, u.host, u.peak_memory_bytes, u.attempt,
               CASE WHEN u.log_len >= 0 THEN substring($14::bytea FROM u.log_off FOR u.log_len) END
        FROM unnest($1::int[], $2::int[], $3::int[], $4::text[], $6::int[], $8::bool[],
                    $9::float8[], $10::float8[], $11::text[], $12::int8[], $13::int[],
                    $15::int[], $16::int[])
          AS u(request_id, idx, len, error, off, provisional,
               started_at, ended_at, host, peak_memory_bytes, attempt, log_len, log_off)
        ON CONFLICT (request_id, idx) DO UPDATE
          SET result = excluded.result, error = excluded.error, provisional = false,
              started_at = excluded.started_at, ended_at = excluded.ended_at,
              host = excluded.host, peak_memory_bytes = excluded.peak_memory_bytes,
              attempt = excluded.attempt, log = excluded.log
          WHERE r.provisional AND NOT excluded.provisional
        RETURNING request_id, idx, result IS NOT NULL AS is_result, xmax::text <> '0' AS replaced),
      added AS (
        SELECT request_id, count(*) FILTER (WHERE is_result)::int AS results,
               (count(*) FILTER (WHERE NOT is_result) - count(*) FILTER (WHERE replaced))::int AS errors
        FROM ins GROUP BY request_id),
      counted AS (
        UPDATE ${s}.requests q SET results = q.results + added.results, errors = q.errors + added.errors
        FROM added WHERE q.id = added.request_id RETURNING q.id)
      SELECT count(*)::int AS inserted,
             CASE WHEN count(*) < $7 THEN array_agg(request_id) END AS ids,
             CASE WHEN count(*) < $7 THEN array_agg(idx) END AS indices
      FROM ins`,
    reportsOf: `SELECT r.request_id, r.idx, r.result, r.error FROM ${s}.reports r
      JOIN unnest($1::int[], $2::int[]) AS k(request_id, idx) ON r.request_id = k.request_id AND r.idx = k.idx`,
    deleteReports: `DELETE FROM ${s}.reports WHERE request_id = $1 AND idx = ANY($2::int[]) RETURNING result IS NOT NULL AS was_result`,
    addCounts: `UPDATE ${s}.requests SET results = results + $1, errors = errors + $2 WHERE id = $3`,
    // Results alone, each framed after its task's index (4 bytes): tasks without one are absent.
    packedResults: `SELECT string_agg(int4send(idx) || ${framed("result")}, '\\x'::bytea ORDER BY idx) AS results
      FROM ${s}.reports WHERE ${range} AND result IS NOT NULL`,
    largeResult: `SELECT result FROM ${s}.reports WHERE request_id = $1 AND idx = $2`,
    errors: `SELECT r.idx, a.value, r.error, r.provisional FROM ${s}.reports r
      JOIN ${s}.args a ON a.request_id = r.request_id AND a.idx = r.idx
      WHERE r.request_id = $1 AND r.error IS NOT NULL ORDER BY r.idx`,
    // The kind and facts of a slice's reports as one bytea of records (see facts.ts,
    // readFacts): a row per report costs the client far more to parse than the server to send.
    // Neither the result nor the log is read (nor fetched from out of line): only whether each
    // is there.
    taskFacts: `SELECT string_agg(int4send(idx)
        || int2send(((result IS NOT NULL)::int | (provisional::int << 1)
          | ((log IS NOT NULL)::int << 2) | ((started_at IS NOT NULL)::int << 3)
          | ((ended_at IS NOT NULL)::int << 4) | ((peak_memory_bytes IS NOT NULL)::int << 5)
          | ((attempt IS NOT NULL)::int << 6) | ((host IS NOT NULL)::int << 7))::int2)
        || float8send(coalesce(started_at, 0)) || float8send(coalesce(ended_at, 0))
        || float8send(coalesce(peak_memory_bytes, 0)::float8) || int4send(coalesce(attempt, 0))
        || int4send(coalesce(length(convert_to(host, 'UTF8')), 0))
        || coalesce(convert_to(host, 'UTF8'), '\\x'::bytea), '\\x'::bytea ORDER BY idx) AS facts
      FROM ${s}.reports WHERE ${range}`,
    logs: `SELECT idx, log FROM ${s}.reports WHERE ${range} AND log IS NOT NULL ORDER BY idx`,
  };
}
