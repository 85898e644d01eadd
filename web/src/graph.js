// /api/graph answers as a graphology graph with the page's node attributes.
import Graph from "graphology";

/** Node colours by kind; the legend uses the same table. */
export const KINDS = {
  publisher: { color: "#1f6feb", label: "publishes server information" },
  named: { color: "#2da44e", label: "named peer" },
  anonymous: { color: "#9aa0a6", label: "anonymous peer" },
};

/**
 * @param {any} node a node of /api/graph
 * @returns {"publisher" | "named" | "anonymous"}
 */
export function kindOf(node) {
  if (node.label === undefined) return "anonymous";
  return node.publishes ? "publisher" : "named";
}

/**
 * @param {any} answer the body of /api/graph
 * @returns {Graph} nodes keyed by id with x, y, size, color, label and the
 *   API's fields; edges keyed "from|to".
 */
export function toGraph(answer) {
  const graph = new Graph({ type: "undirected", multi: false, allowSelfLoops: false });
  for (const node of answer.nodes) {
    const kind = kindOf(node);
    graph.addNode(node.id, {
      ...node,
      kind,
      label: node.label ?? null,
      color: KINDS[kind].color,
      x: node.x,
      y: node.y,
    });
  }
  for (const edge of answer.edges) {
    if (graph.hasNode(edge.from) && graph.hasNode(edge.to)) {
      graph.mergeEdgeWithKey(`${edge.from}|${edge.to}`, edge.from, edge.to, {
        confirmed: edge.confirmed,
        directions: edge.directions,
        color: edge.confirmed ? "#8b949e" : "#d0d7de",
        size: edge.confirmed ? 1 : 0.5,
      });
    }
  }
  graph.forEachNode((id) => {
    graph.setNodeAttribute(id, "size", sizeFor(graph.degree(id)));
  });
  const radius = extent(graph);
  graph.forEachNode((id, attributes) => {
    if (typeof attributes.x !== "number" || typeof attributes.y !== "number") place(graph, id, radius);
  });
  return graph;
}

/** @param {number} degree @returns {number} the node's radius on screen */
export function sizeFor(degree) {
  return 2 + 2.5 * Math.log2(1 + degree);
}

/**
 * Give a node that has no position (one that arrived live, before the
 * server laid it out) one next to its placed neighbours, or at the rim of
 * the picture when it has none.
 * @param {Graph} graph
 * @param {string} id
 * @param {number} radius how far out the picture reaches ({@link extent})
 */
export function place(graph, id, radius = extent(graph)) {
  let x = 0;
  let y = 0;
  let placed = 0;
  graph.forEachNeighbor(id, (_, attributes) => {
    if (typeof attributes.x === "number" && typeof attributes.y === "number") {
      x += attributes.x;
      y += attributes.y;
      placed += 1;
    }
  });
  const angle = (hash(id) % 360) * (Math.PI / 180);
  if (placed > 0) {
    graph.mergeNodeAttributes(id, {
      x: x / placed + 8 * Math.cos(angle),
      y: y / placed + 8 * Math.sin(angle),
    });
    return;
  }
  const rim = (radius || 100) * 1.05;
  graph.mergeNodeAttributes(id, { x: rim * Math.cos(angle), y: rim * Math.sin(angle) });
}

/** @param {Graph} graph @returns {number} the distance of the farthest placed node from the origin */
export function extent(graph) {
  let radius = 0;
  graph.forEachNode((_, attributes) => {
    if (typeof attributes.x === "number" && typeof attributes.y === "number") {
      radius = Math.max(radius, Math.hypot(attributes.x, attributes.y));
    }
  });
  return radius;
}

/** @param {string} text @returns {number} a small stable hash */
function hash(text) {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) >>> 0;
  return h;
}
