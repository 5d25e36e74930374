/** The package name every error of `@sheepdog/dashboard` carries as its `source`. */
export const source = "dashboard";
