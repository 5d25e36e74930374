/** The package name in this package's errors: `[sheepdog] [deploy-ssh] ...`. */
export const source = "deploy-ssh";
