// Baseline 1 for bench/web_render.py: the graph drawn the way the public
// graph site's main page does it: vis-network on canvas, forceAtlas2Based
// physics on the main thread, no stabilisation before the first draw,
// data from /data.json. Marks <html data-state="drawn"> after the first draw.
import { DataSet } from "vis-data/peer";
import { Network } from "vis-network/peer";
import "vis-network/styles/vis-network.css";

const data = await (await fetch("/data.json")).json();
const nodes = new DataSet(data.nodes.map((n) => (n.label ? n : { id: n.id })));
const edges = new DataSet(data.edges.map((e, i) => ({ id: i, from: e.from, to: e.to })));
const network = new Network(
  document.getElementById("graph"),
  { nodes, edges },
  {
    physics: {
      solver: "forceAtlas2Based",
      timestep: 1.0,
      stabilization: { iterations: 0, updateInterval: 200, fit: true },
      forceAtlas2Based: { gravitationalConstant: -100, damping: 0.8 },
      maxVelocity: 200,
    },
    edges: { smooth: false },
  },
);
network.once("afterDrawing", () => {
  document.documentElement.dataset.state = "drawn";
});
const sample = data.nodes.slice(0, 1000).map((n) => n.id);
window.benchPositions = () => {
  const positions = network.getPositions(sample);
  return sample.map((id) => [positions[id].x, positions[id].y]);
};
