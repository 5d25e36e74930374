#!/usr/bin/env node
// Fails when a function in the packages' and apps' source (tests and fixtures aside) is longer
// than the limit: a function that no longer fits on a screen is two. The pickle VM is the one
// exception: serialise's opcode loops (decode.ts, encode.ts) and the unrolled fromCharCode
// switch that reads its short strings (internal/utf8.ts), each measured faster than split.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const limit = Number(process.env.SHEEPDOG_FUNCTION_LINES ?? 120);
const root = join(import.meta.dirname, "..");
const exempt = new Set([
  "packages/serialise/src/decode.ts",
  "packages/serialise/src/encode.ts",
  "packages/serialise/src/internal/utf8.ts",
]);

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!["node_modules", "dist", "__fixtures__"].includes(entry.name)) yield* sourceFiles(path);
    } else if (/\.ts$/.test(entry.name) && !/\.test\.ts$|\.d\.ts$/.test(entry.name)) {
      yield path;
    }
  }
}

function nameOf(node) {
  if (node.name) return node.name.getText();
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText();
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText();
  return "(anonymous)";
}

const long = [];
for (const top of ["packages", "apps"]) {
  for (const dir of readdirSync(join(root, top))) {
    for (const path of sourceFiles(join(root, top, dir, "src"))) {
      const file = relative(root, path);
      if (exempt.has(file)) continue;
      const source = ts.createSourceFile(
        path,
        readFileSync(path, "utf8"),
        ts.ScriptTarget.Latest,
        true,
      );
      const visit = (node) => {
        if (ts.isFunctionLike(node) && "body" in node && node.body) {
          const start = source.getLineAndCharacterOfPosition(node.getStart()).line;
          const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
          if (end - start + 1 > limit)
            long.push(`${file}:${start + 1} ${nameOf(node)}: ${end - start + 1} lines`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
  }
}
if (long.length > 0) {
  console.error(
    `Functions over ${limit} lines (split each into named pieces):\n${long.join("\n")}`,
  );
  process.exit(1);
}
console.log(`function length: none over ${limit} lines`);
