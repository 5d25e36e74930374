/** The package name every error of `@sheepdog/gridengine` carries as its `source`. */
export const source = "gridengine";
