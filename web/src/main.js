// The page's entry point: one bundle, one view per path (the server answers
// each path of xmppnetgraph.http.static.PAGE_PATHS with the same page).
import "./style.css";
import { showMap } from "./map.js";

/** path -> the function that shows that view */
const VIEWS = {
  "/": showMap,
};

(VIEWS[location.pathname] ?? showMap)();
