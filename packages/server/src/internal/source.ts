/** The package name every error of `@sheepdog/server` carries as its `source`. */
export const source = "server";
