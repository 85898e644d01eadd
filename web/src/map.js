// The map view (/): the whole graph, drawn by sigma.js at the positions
// the server computed.
import Sigma from "sigma";
import { getJSON } from "./api.js";
import { toGraph } from "./graph.js";
import { showMessage } from "./page.js";

function webGLAvailable() {
  const canvas = document.createElement("canvas");
  return Boolean(canvas.getContext("webgl2") || canvas.getContext("webgl"));
}

/** Draw the map into the page's #map element. */
export async function showMap() {
  if (!webGLAvailable()) {
    showMessage("This map needs WebGL, which this browser does not offer. The data is at /api/graph.");
    return;
  }
  let answer;
  try {
    answer = await getJSON("/api/graph");
  } catch (error) {
    showMessage(`The graph could not be loaded: ${error.message}`);
    return;
  }
  const graph = toGraph(answer);
  const counts = answer.counts;
  document.getElementById("counts").textContent =
    `${counts.named} named domains, ${counts.anonymous} anonymous, ${counts.edges} links`;
  if (graph.order === 0) {
    showMessage("The graph is empty so far: the crawler has not stored any server information yet.");
  }
  const renderer = new Sigma(graph, document.getElementById("map"), {
    renderEdgeLabels: false,
    labelRenderedSizeThreshold: 8,
  });
  window.xmppnetgraph = { graph, renderer };
  document.documentElement.dataset.state = "drawn";
}
