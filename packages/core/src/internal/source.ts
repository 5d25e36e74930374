/** The package name in this package's errors: `[sheepdog] [core] ...`. */
export const source = "core";
