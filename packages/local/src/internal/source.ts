/** The package name every error of `@sheepdog/local` carries as its `source`. */
export const source = "local";
