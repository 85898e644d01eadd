// The map's switches (what /api/graph is asked for) and camera buttons.
import { h } from "./dom.js";

/**
 * The view parameters of /api/graph that the switches set, as the URL
 * carries them (shareable): skipAnon, combineAnon, fold=0.
 * @typedef {{skipAnon: boolean, combineAnon: boolean, fold: boolean}} Switches
 */

/** @param {URLSearchParams} query @returns {Switches} */
export function readSwitches(query) {
  return {
    skipAnon: query.has("skipAnon") && query.get("skipAnon") !== "0",
    combineAnon: query.has("combineAnon") && query.get("combineAnon") !== "0",
    fold: query.get("fold") !== "0",
  };
}

/**
 * @param {URLSearchParams} query changed to carry `switches`
 * @param {Switches} switches
 */
export function writeSwitches(query, switches) {
  for (const name of ["skipAnon", "combineAnon"]) {
    if (switches[name]) query.set(name, "1");
    else query.delete(name);
  }
  if (switches.fold) query.delete("fold");
  else query.set("fold", "0");
}

/**
 * @param {Switches} switches the current ones
 * @param {(switches: Switches) => void} change called with the new ones
 * @returns {HTMLElement}
 */
export function switchBox(switches, change) {
  const boxes = {};
  const item = (name, label, checked) => {
    boxes[name] = h("input", { type: "checkbox", name, checked });
    boxes[name].addEventListener("change", () => {
      boxes.combineAnon.disabled = boxes.skipAnon.checked;
      change({ skipAnon: boxes.skipAnon.checked, combineAnon: boxes.combineAnon.checked, fold: !boxes.fold.checked });
    });
    return h("label", {}, boxes[name], ` ${label}`);
  };
  const box = h(
    "fieldset",
    { class: "switches" },
    h("legend", { class: "visually-hidden" }, "Show"),
    item("skipAnon", "Hide anonymous peers", switches.skipAnon),
    item("combineAnon", "Combine anonymous peers", switches.combineAnon),
    item("fold", "Service subdomains apart", !switches.fold),
  );
  boxes.combineAnon.disabled = switches.skipAnon;
  // Open where there is room; on a phone, one tap away.
  const wide = window.matchMedia("(min-width: 641px)").matches;
  return h("details", { class: "options", open: wide }, h("summary", {}, "Options"), box);
}

/**
 * @param {import("sigma").Camera} camera
 * @returns {HTMLElement} zoom in, zoom out and fit-to-view buttons
 */
export function cameraButtons(camera) {
  const button = (label, text, act) => h("button", { type: "button", "aria-label": label, title: label, onclick: act }, text);
  return h(
    "div",
    { class: "camera", role: "group", "aria-label": "Zoom" },
    button("Zoom in", "+", () => camera.animatedZoom({ duration: 300 })),
    button("Zoom out", "−", () => camera.animatedUnzoom({ duration: 300 })),
    button("Fit the whole map", "Fit", () => camera.animatedReset({ duration: 300 })),
  );
}
