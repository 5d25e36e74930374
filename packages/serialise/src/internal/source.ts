/** The package name in this package's errors: `[sheepdog] [serialise] ...`. */
export const source = "serialise";
