import type { Remote } from "../../remote.js";

/** Opens a fresh Remote. The suite closes each one it opens. */
export type RemoteFactory = () => Remote | Promise<Remote>;
