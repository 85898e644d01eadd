// Baseline 2 for bench/web_render.py: the graph drawn the way the public
// graph site's WebGL page does it: VivaGraph's WebGL renderer with its
// force-directed layout on the main thread, data from /data.json. Marks
// <html data-state="drawn"> after the renderer's first frame.
import Viva from "vivagraphjs";

const data = await (await fetch("/data.json")).json();
const graph = Viva.Graph.graph();
for (const node of data.nodes) graph.addNode(node.id, node.label ? { label: node.label } : {});
for (const edge of data.edges) graph.addLink(edge.from, edge.to);
const layout = Viva.Graph.Layout.forceDirected(graph, {
  springLength: 70,
  springCoeff: 0.0008,
  gravity: -3.2,
  theta: 0.8,
  dragCoeff: 0.02,
  timeStep: 5,
});
const graphics = Viva.Graph.View.webglGraphics();
const renderer = Viva.Graph.View.renderer(graph, {
  container: document.getElementById("graph"),
  layout,
  graphics,
});
renderer.run();
requestAnimationFrame(() => {
  document.documentElement.dataset.state = "drawn";
});
const sample = data.nodes.slice(0, 1000).map((n) => n.id);
window.benchPositions = () =>
  sample.map((id) => {
    const p = layout.getNodePosition(id);
    return [p.x, p.y];
  });
