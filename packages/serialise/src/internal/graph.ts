import { PyGlobal, PyObject } from "../values.js";

/** The decoded value is nested deeper than allowed. */
export class GraphTooDeep extends Error {}

type Node = object;

function isNode(v: unknown): v is Node {
  return typeof v === "object" && v !== null && !ArrayBuffer.isView(v) && !(v instanceof PyGlobal);
}

/** The values a node holds, in the order encode writes them. */
function childrenOf(node: Node): unknown[] {
  if (Array.isArray(node)) return node;
  if (node instanceof Map) {
    const out: unknown[] = [];
    for (const [k, v] of node) out.push(k, v);
    return out;
  }
  if (node instanceof Set) return [...node];
  if (node instanceof PyObject) {
    const out: unknown[] = [node.callable, node.args];
    if (node.kwargs !== undefined) out.push(node.kwargs);
    if (node.listItems !== undefined) for (const item of node.listItems) out.push(item);
    if (node.dictItems !== undefined) for (const [k, v] of node.dictItems) out.push(k, v);
    if (node.state !== undefined) out.push(node.state);
    return out;
  }
  return Object.values(node);
}

/**
 * Points every reference to a value that was replaced after it had been shared through the memo
 * (a dict that met a non-str key and became a Map, a numpy array) at its replacement.
 */
function replaceAll(root: unknown, replaced: Map<object, unknown>): unknown {
  const fix = (v: unknown): unknown => (isNode(v) ? (replaced.get(v) ?? v) : v);
  const top = fix(root);
  const seen = new Set<Node>();
  const todo: unknown[] = [top];
  while (todo.length > 0) {
    const node = todo.pop();
    if (!isNode(node) || seen.has(node)) continue;
    seen.add(node);
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) node[i] = fix(node[i]);
    } else if (node instanceof Map) {
      const entries = [...node];
      if (entries.some(([k]) => fix(k) !== k)) {
        node.clear();
        for (const [k, v] of entries) node.set(fix(k), fix(v));
      } else {
        for (const [k, v] of entries) node.set(k, fix(v));
      }
    } else if (node instanceof Set) {
      const items = [...node];
      if (items.some((v) => fix(v) !== v)) {
        node.clear();
        for (const v of items) node.add(fix(v));
      }
    } else if (node instanceof PyObject) {
      node.callable = fix(node.callable);
      node.args = fix(node.args) as unknown[];
      if (node.kwargs !== undefined) node.kwargs = fix(node.kwargs) as Record<string, unknown>;
      if (node.listItems !== undefined) node.listItems = node.listItems.map(fix);
      if (node.dictItems !== undefined)
        node.dictItems = node.dictItems.map(([k, v]) => [fix(k), fix(v)]);
      if (node.state !== undefined) node.state = fix(node.state);
    } else {
      const dict = node as Record<string, unknown>;
      for (const key of Object.keys(dict)) {
        const v = dict[key];
        const w = fix(v);
        if (w !== v) {
          Object.defineProperty(dict, key, {
            value: w,
            writable: true,
            enumerable: true,
            configurable: true,
          });
        }
      }
    }
    for (const child of childrenOf(node)) todo.push(child);
  }
  return top;
}

/**
 * Throws GraphTooDeep when the longest chain of nested containers from `root` is longer than
 * `maxDepth` (cycles are cut where they close). Iterative, linear in the size of the graph.
 */
function checkDepth(root: unknown, maxDepth: number): void {
  if (!isNode(root)) return;
  const done = new Map<Node, number>();
  const onPath = new Set<Node>();
  const nodes: Node[] = [root];
  const kids: unknown[][] = [childrenOf(root)];
  const next: number[] = [0];
  const best: number[] = [0];
  onPath.add(root);
  while (nodes.length > 0) {
    const top = nodes.length - 1;
    const list = kids[top] as unknown[];
    const i = next[top] as number;
    if (i < list.length) {
      next[top] = i + 1;
      const child = list[i];
      if (!isNode(child) || onPath.has(child)) continue;
      const known = done.get(child);
      if (known !== undefined) {
        if (known > (best[top] as number)) best[top] = known;
        continue;
      }
      if (nodes.length >= maxDepth) throw new GraphTooDeep();
      onPath.add(child);
      nodes.push(child);
      kids.push(childrenOf(child));
      next.push(0);
      best.push(0);
      continue;
    }
    const depth = (best[top] as number) + 1;
    if (depth > maxDepth) throw new GraphTooDeep();
    const node = nodes.pop() as Node;
    kids.pop();
    next.pop();
    best.pop();
    onPath.delete(node);
    done.set(node, depth);
    if (top > 0 && depth > (best[top - 1] as number)) best[top - 1] = depth;
  }
}

/**
 * Finishes a decoded value whose containers were shared through the memo: repoints references to
 * dicts that became Maps, then measures its real nesting depth.
 */
export function finishGraph(
  root: unknown,
  replaced: Map<object, unknown> | undefined,
  maxDepth: number,
): unknown {
  const top = replaced === undefined ? root : replaceAll(root, replaced);
  checkDepth(top, maxDepth);
  return top;
}
