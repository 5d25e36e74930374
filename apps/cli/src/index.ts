export { jsonLine, toJsonValue } from "./json-values.js";
export type { CliIo } from "./main.js";
export { exitCodes, main } from "./main.js";
export { parseArgTuples } from "./read-args.js";
