import { packageBuild } from "@sheepdog/tsconfig/tsup";
import { defineConfig } from "tsup";

export default defineConfig(packageBuild());
