// The map view (/): the whole graph, drawn by sigma.js at the positions
// the server computed, with a legend, search and focus, a side panel,
// switches, live updates and a time slider.
import Sigma from "sigma";
import "./map.css";
import { getJSON } from "./api.js";
import { cameraButtons, readSwitches, switchBox, writeSwitches } from "./controls.js";
import { h } from "./dom.js";
import { Emphasis } from "./emphasis.js";
import { emptyGraph, syncGraph } from "./graph.js";
import { Legend } from "./legend.js";
import { ListView } from "./listview.js";
import { LiveUpdates } from "./live.js";
import { showMessage } from "./page.js";
import { Panel } from "./panel.js";
import { searchBox } from "./search.js";
import { Timeline } from "./timeline.js";

function webGLAvailable() {
  const canvas = document.createElement("canvas");
  return Boolean(canvas.getContext("webgl2") || canvas.getContext("webgl"));
}

/** Draw the map into the page's #map element. */
export async function showMap() {
  if (!webGLAvailable()) {
    showMessage("This map needs WebGL, which this browser does not offer. The data is at /api/graph.");
    document.documentElement.dataset.state = "no-webgl";
    return;
  }
  const view = new MapView(document.getElementById("map"));
  try {
    await view.start();
  } catch (error) {
    showMessage(`The graph could not be loaded: ${error.message}`);
    document.documentElement.dataset.state = "failed";
  }
}

/** @param {number} seconds since the epoch @returns {string} RFC 3339, whole seconds */
function rfc3339(seconds) {
  return new Date(Math.floor(seconds) * 1000).toISOString().replace(/\.\d+Z$/, "Z");
}

class MapView {
  /** @param {HTMLElement} container */
  constructor(container) {
    this.container = container;
    this.switches = readSwitches(new URLSearchParams(location.search));
    /** @type {number | null} the time shown (seconds since the epoch), or null: now */
    this.at = null;
    /** @type {string | null} */
    this.focused = null;
    /** @type {Map<string, {x: number, y: number}>} every position shown so far */
    this.positions = new Map();
    this.graph = emptyGraph();
    /** @type {"live" | "reconnecting"} */
    this.connection = "reconnecting";
    this._wanted = false;
    this._mark = false;
    /** @type {Promise<void> | null} */
    this._loading = null;
  }

  async start() {
    const answer = await getJSON(this.graphPath());
    syncGraph(this.graph, answer, this.positions);
    this.renderer = new Sigma(this.graph, this.container, {
      renderEdgeLabels: false,
      labelRenderedSizeThreshold: 8,
      // Room around the picture for the tools and the legend over it.
      stagePadding: 60,
      zIndex: true,
    });
    this._frame();
    // sigma follows the window's size; the map's box also changes with the
    // page (a phone's bottom sheet).
    new ResizeObserver(() => this.renderer.resize()).observe(this.container);
    this.emphasis = new Emphasis(this.renderer);
    const focus = (id) => this.focus(id);
    this.panel = new Panel(this.graph, focus);
    this.legend = new Legend();
    this.list = new ListView(focus);
    this.timeline = new Timeline((at) => this.showAt(at));
    this.status = h("span", { class: "live-status", role: "status" }, "connecting…");
    this.search = searchBox(
      () => this.graph.filterNodes((_, a) => a.label !== null),
      (name) => this.focus(name),
    );
    document.querySelector(".bar").append(this.search, this.status);
    const main = this.container.parentElement;
    main.append(
      h(
        "div",
        { class: "map-tools" },
        switchBox(this.switches, (switches) => this.setSwitches(switches)),
        cameraButtons(this.renderer.getCamera()),
      ),
      this.legend.element,
      this.timeline.element,
      this.panel.element,
      this.list.element,
    );
    this._shown(answer, false);
    this.timeline.setRange(oldest(answer));

    this.renderer.on("clickNode", ({ node }) => this.focus(node));
    this.renderer.on("doubleClickNode", (event) => {
      event.preventSigmaDefault();
      this.focus(event.node);
    });
    this.renderer.on("clickStage", () => this.focus(null));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.focused !== null) this.focus(null);
      const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement;
      if (event.key === "/" && !typing) {
        event.preventDefault();
        document.getElementById("search").focus();
      }
    });
    window.addEventListener("popstate", () => {
      this.focus(new URLSearchParams(location.search).get("focus"), { push: false });
    });
    this.live = new LiveUpdates(
      answer.last_event_id,
      () => this.changed(),
      (state) => {
        this.connection = state;
        this._status();
      },
    );
    const wanted = new URLSearchParams(location.search).get("focus");
    if (wanted) this.focus(wanted, { push: false });
    window.xmppnetgraph = { graph: this.graph, renderer: this.renderer, view: this, timeline: this.timeline };
    document.documentElement.dataset.state = "drawn";
  }

  /** @returns {string} the /api/graph request for the switches and the time */
  graphPath() {
    const query = new URLSearchParams();
    if (this.switches.skipAnon) query.set("skipAnon", "1");
    if (this.switches.combineAnon) query.set("combineAnon", "1");
    if (!this.switches.fold) query.set("fold", "0");
    if (this.at !== null) query.set("at", rfc3339(this.at));
    const text = query.toString();
    return text ? `/api/graph?${text}` : "/api/graph";
  }

  /**
   * Load the graph again (for the switches and the time) into the same
   * graph, keeping positions and the camera. Requests while one is running
   * are served by one more load after it.
   * @param {boolean} mark whether to mark what is new (live changes)
   * @returns {Promise<void>}
   */
  reload(mark) {
    this._wanted = true;
    this._mark = this._mark || mark;
    if (this._loading === null) {
      this._loading = this._load().finally(() => {
        this._loading = null;
      });
    }
    return this._loading;
  }

  async _load() {
    while (this._wanted) {
      this._wanted = false;
      const mark = this._mark;
      this._mark = false;
      let answer;
      try {
        answer = await getJSON(this.graphPath());
      } catch (error) {
        this.status.textContent = `could not update: ${error.message}`;
        continue;
      }
      const added = syncGraph(this.graph, answer, this.positions);
      this._frame();
      if (mark) this.emphasis.mark(added);
      this._shown(answer, true);
      if (this.at === null) this.timeline.setRange(oldest(answer));
    }
  }

  /** The store changed (live): show it, unless the slider shows the past. */
  async changed() {
    if (this.at === null) await this.reload(true);
  }

  /** @param {number | null} at a time to show, or null for now */
  async showAt(at) {
    this.at = at;
    this._status();
    await this.reload(false);
  }

  /** Say whether the map follows the changes as they happen. */
  _status() {
    this.status.dataset.state = this.connection;
    if (this.connection !== "live") this.status.textContent = "reconnecting…";
    else this.status.textContent = this.at === null ? "live" : "live updates paused: showing the past";
  }

  /** @param {import("./controls.js").Switches} switches */
  async setSwitches(switches) {
    this.switches = switches;
    const query = new URLSearchParams(location.search);
    writeSwitches(query, switches);
    history.replaceState(null, "", `${location.pathname}${query.size ? "?" : ""}${query}`);
    await this.reload(false);
  }

  /**
   * Focus a domain (or none): its neighbours stand out, the camera goes
   * to it, the panel tells about it, and the URL says so.
   * @param {string | null} wanted a node id or a domain (a folded service
   *   subdomain focuses its parent), or null
   * @param {{push?: boolean}} [options] push: add a history entry
   */
  focus(wanted, { push = true } = {}) {
    const id = wanted === null || wanted === "" ? null : this._resolve(wanted);
    this.focused = id;
    this.emphasis.focus(id);
    this.panel.show(id);
    this.list.update(this.graph, id);
    document.documentElement.dataset.focus = id ?? "";
    const query = new URLSearchParams(location.search);
    if (id === null) query.delete("focus");
    else query.set("focus", id);
    const url = `${location.pathname}${query.size ? "?" : ""}${query}`;
    if (url !== `${location.pathname}${location.search}`) {
      if (push) history.pushState(null, "", url);
      else history.replaceState(null, "", url);
    }
    if (id !== null && this.graph.hasNode(id)) {
      const camera = this.renderer.getCamera();
      const shown = this.renderer.getNodeDisplayData(id);
      if (shown !== undefined) {
        camera.animate({ x: shown.x, y: shown.y, ratio: Math.min(camera.getState().ratio, 0.6) }, { duration: 400 });
      }
    }
  }

  /** @param {string} wanted @returns {string} the node that shows it */
  _resolve(wanted) {
    const name = wanted.trim().toLowerCase();
    if (this.graph.hasNode(wanted)) return wanted;
    if (this.graph.hasNode(name)) return name;
    const parent = this.graph.findNode((_, a) => Array.isArray(a.members) && a.members.includes(name));
    return parent ?? name;
  }

  /** Keep the frame the union of every position shown, so the camera stays put. */
  _frame() {
    let x0 = Infinity;
    let x1 = -Infinity;
    let y0 = Infinity;
    let y1 = -Infinity;
    for (const { x, y } of this.positions.values()) {
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
    if (x0 === Infinity) return;
    const old = this.renderer.getCustomBBox();
    if (old && old.x[0] === x0 && old.x[1] === x1 && old.y[0] === y0 && old.y[1] === y1) return;
    this.renderer.setCustomBBox({ x: [x0, x1], y: [y0, y1] });
  }

  /**
   * After a graph answer was shown: counts, the list, the message.
   * @param {any} answer
   * @param {boolean} again whether it replaced an earlier one
   */
  _shown(answer, again) {
    if (again) this.emphasis.refreshNeighbours();
    this.legend.update(this.graph);
    this.list.update(this.graph, this.focused);
    const message = document.getElementById("message");
    if (this.graph.order > 0) message.hidden = true;
    else if (this.at !== null) showMessage(`Nothing was on the graph at ${rfc3339(this.at)}.`);
    else showMessage("The graph is empty so far: the crawler has not stored any server information yet.");
    document.documentElement.dataset.shown = this.at === null ? "now" : rfc3339(this.at);
    this.container.dataset.loads = String(Number(this.container.dataset.loads ?? 0) + 1);
  }
}

/** @param {any} answer a /api/graph body @returns {number} its oldest first_seen, seconds since the epoch */
function oldest(answer) {
  let first = Date.parse(answer.at) / 1000;
  for (const node of answer.nodes) first = Math.min(first, Date.parse(node.first_seen) / 1000);
  return first;
}
