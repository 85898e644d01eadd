// The page's entry point: one bundle, one view per path (the server answers
// each path of xmppnetgraph.http.static.PAGE_PATHS with the same page).
import "./style.css";
import { showAdd } from "./add.js";
import { showMap } from "./map.js";
import { showNav } from "./nav.js";
import { showStats } from "./stats.js";

/** path -> the function that shows that view */
const VIEWS = {
  "/": showMap,
  "/stats": showStats,
  "/add": showAdd,
};

showNav();
(VIEWS[location.pathname] ?? showMap)();
