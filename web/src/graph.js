// /api/graph answers as a graphology graph with the page's node attributes,
// and later answers (live updates, switches, the time slider) merged into
// the same graph so that nodes keep their places.
import Graph from "graphology";

/** Node colours by kind; the legend uses the same table. */
export const KINDS = {
  publisher: { color: "#1f6feb", label: "publish server information" },
  named: { color: "#2da44e", label: "named peers (not publishing)" },
  anonymous: { color: "#9aa0a6", label: "anonymous peers" },
};

const EDGE_COLORS = { confirmed: "#8b949e", unconfirmed: "#d0d7de" };

/**
 * @param {any} node a node of /api/graph
 * @returns {"publisher" | "named" | "anonymous"}
 */
export function kindOf(node) {
  if (node.label === undefined || node.label === null) return "anonymous";
  return node.publishes ? "publisher" : "named";
}

/** @returns {Graph} an empty graph of the page's kind */
export function emptyGraph() {
  return new Graph({ type: "undirected", multi: false, allowSelfLoops: false });
}

/**
 * @param {any} answer the body of /api/graph
 * @returns {Graph} nodes keyed by id with x, y, size, color, label and the
 *   API's fields; edges keyed by their two ends ({@link edgeKey}).
 */
export function toGraph(answer) {
  const graph = emptyGraph();
  syncGraph(graph, answer, new Map());
  return graph;
}

/** @param {string} a @param {string} b @returns {string} the key of the edge between a and b */
export function edgeKey(a, b) {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/**
 * Make `graph` show `answer`: drop what it no longer has, update what
 * stays (keeping its position), add what is new. A new node takes the
 * position the server gave, else the one it had earlier on this page
 * (`remembered`), else one next to its neighbours ({@link place}).
 * @param {Graph} graph
 * @param {any} answer the body of /api/graph
 * @param {Map<string, {x: number, y: number}>} remembered every position
 *   shown so far, by node id; updated
 * @returns {{nodes: string[], edges: string[]}} the ids of the added nodes and edges
 */
export function syncGraph(graph, answer, remembered) {
  const added = { nodes: [], edges: [] };
  const ids = new Set(answer.nodes.map((node) => node.id));
  for (const id of graph.nodes()) if (!ids.has(id)) graph.dropNode(id);
  const unplaced = [];
  for (const node of answer.nodes) {
    const kind = kindOf(node);
    const attributes = { ...node, kind, label: node.label ?? null, color: KINDS[kind].color };
    delete attributes.x;
    delete attributes.y;
    if (graph.hasNode(node.id)) {
      graph.mergeNodeAttributes(node.id, attributes);
      continue;
    }
    const at = typeof node.x === "number" && typeof node.y === "number" ? node : remembered.get(node.id);
    // sigma draws a node as soon as it is added: one without a position
    // starts at the origin until its edges are there to place it by.
    if (at === undefined) unplaced.push(node.id);
    Object.assign(attributes, at === undefined ? { x: 0, y: 0 } : { x: at.x, y: at.y });
    graph.addNode(node.id, attributes);
    added.nodes.push(node.id);
  }
  const keys = new Set();
  for (const edge of answer.edges) {
    if (!graph.hasNode(edge.from) || !graph.hasNode(edge.to) || edge.from === edge.to) continue;
    const key = edgeKey(edge.from, edge.to);
    keys.add(key);
    if (!graph.hasEdge(key)) added.edges.push(key);
    graph.mergeEdgeWithKey(key, edge.from, edge.to, {
      confirmed: edge.confirmed,
      directions: edge.directions,
      color: edge.confirmed ? EDGE_COLORS.confirmed : EDGE_COLORS.unconfirmed,
      size: edge.confirmed ? 1 : 0.5,
    });
  }
  for (const key of graph.edges()) if (!keys.has(key)) graph.dropEdge(key);
  graph.forEachNode((id, attributes) => {
    graph.setNodeAttribute(id, "size", sizeFor(graph.degree(id), attributes.kind));
  });
  const waiting = new Set(unplaced);
  const radius = extent(graph, waiting);
  for (const id of unplaced) {
    place(graph, id, radius, waiting);
    waiting.delete(id);
  }
  graph.forEachNode((id, attributes) => remembered.set(id, { x: attributes.x, y: attributes.y }));
  return added;
}

/**
 * @param {number} degree
 * @param {string} [kind] anonymous peers are drawn smaller: blips
 * @returns {number} the node's radius on screen
 */
export function sizeFor(degree, kind) {
  return (kind === "anonymous" ? 1.5 : 3) + 2.5 * Math.log2(1 + degree);
}

/**
 * Give a node that has no position (one that arrived live, before the
 * server laid it out) one next to its placed neighbours, or at the rim of
 * the picture when it has none.
 * @param {Graph} graph
 * @param {string} id
 * @param {number} radius how far out the picture reaches ({@link extent})
 * @param {Set<string>} [waiting] nodes not placed yet (their x and y mean nothing)
 */
export function place(graph, id, radius = extent(graph), waiting = new Set()) {
  let x = 0;
  let y = 0;
  let placed = 0;
  graph.forEachNeighbor(id, (neighbour, attributes) => {
    if (!waiting.has(neighbour)) {
      x += attributes.x;
      y += attributes.y;
      placed += 1;
    }
  });
  const angle = (hash(id) % 360) * (Math.PI / 180);
  if (placed > 0) {
    const spread = Math.max(radius, 100) * 0.08;
    graph.mergeNodeAttributes(id, {
      x: x / placed + spread * Math.cos(angle),
      y: y / placed + spread * Math.sin(angle),
    });
    return;
  }
  const rim = (radius || 100) * 1.05;
  graph.mergeNodeAttributes(id, { x: rim * Math.cos(angle), y: rim * Math.sin(angle) });
}

/**
 * @param {Graph} graph
 * @param {Set<string>} [waiting] nodes not placed yet
 * @returns {number} the distance of the farthest placed node from the origin
 */
export function extent(graph, waiting = new Set()) {
  let radius = 0;
  graph.forEachNode((id, attributes) => {
    if (!waiting.has(id)) {
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
