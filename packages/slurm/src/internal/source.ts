/** The package name every error of `@sheepdog/slurm` carries as its `source`. */
export const source = "slurm";
