/** The package name in this package's errors: `[sheepdog] [contracts] ...`. */
export const source = "contracts";
