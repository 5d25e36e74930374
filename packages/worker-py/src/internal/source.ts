/** The package name in this package's errors: `[sheepdog] [worker-py] ...`. */
export const source = "worker-py";
