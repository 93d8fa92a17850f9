/**
 * A tidy top-down layout of a tree: leaves side by side in pre-order, each parent centred over
 * its children, one row per depth. It is computed once per tree (not per tick), so the webview
 * only recolours boxes while the tree runs.
 */
import type { Drawing, PictureNode } from "./model";

export const NODE_WIDTH = 140;
export const NODE_HEIGHT = 36;
const COLUMN = NODE_WIDTH + 16;
const ROW = NODE_HEIGHT + 48;
const MARGIN = 12;

/** Lay out `nodes` (pre-order, root first, as `canopy/picture` gives them). */
export function layout(nodes: readonly PictureNode[], edges: readonly { from: string; to: string }[]): Drawing {
  const children = new Map<string, string[]>();
  for (const { from, to } of edges) {
    const list = children.get(from);
    if (list === undefined) {
      children.set(from, [to]);
    } else {
      list.push(to);
    }
  }
  const column = new Map<string, number>();
  const depth = new Map<string, number>();
  let leaves = 0;
  let deepest = 0;
  // Iterative post-order, so a very deep tree cannot exhaust the stack.
  const ids = new Set(nodes.map((node) => node.id));
  const roots = nodes.filter((node) => node.parent === null || !ids.has(node.parent));
  for (const root of roots) {
    const stack: { id: string; level: number; visited: boolean }[] = [{ id: root.id, level: 0, visited: false }];
    while (stack.length > 0) {
      const top = stack.pop()!;
      const kids = children.get(top.id) ?? [];
      if (!top.visited) {
        depth.set(top.id, top.level);
        deepest = Math.max(deepest, top.level);
        if (kids.length === 0) {
          column.set(top.id, leaves++);
          continue;
        }
        stack.push({ ...top, visited: true });
        for (let i = kids.length - 1; i >= 0; i--) {
          stack.push({ id: kids[i], level: top.level + 1, visited: false });
        }
      } else {
        column.set(top.id, (column.get(kids[0])! + column.get(kids[kids.length - 1])!) / 2);
      }
    }
  }
  const placed = nodes
    .filter((node) => column.has(node.id))
    .map((node) => ({
      id: node.id,
      name: node.name,
      kind: node.kind_short,
      shape: node.shape,
      x: MARGIN + column.get(node.id)! * COLUMN,
      y: MARGIN + depth.get(node.id)! * ROW,
    }));
  return {
    nodes: placed,
    edges: edges.filter((edge) => column.has(edge.from) && column.has(edge.to)),
    width: 2 * MARGIN + Math.max(leaves, 1) * COLUMN - (COLUMN - NODE_WIDTH),
    height: 2 * MARGIN + deepest * ROW + NODE_HEIGHT,
    nodeWidth: NODE_WIDTH,
    nodeHeight: NODE_HEIGHT,
  };
}
