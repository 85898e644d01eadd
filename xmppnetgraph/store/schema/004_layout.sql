-- The graph's layout: a position for each node id of the default view of
-- /api/graph (service subdomains folded, anonymous peers apart), in layout
-- units (about -1000..1000). A relayout rewrites the positions of the
-- nodes it laid out in one transaction; positions of nodes that left the
-- graph stay, for the graph of the past (?at=) and for their return.
CREATE TABLE graph_layout (
    node TEXT PRIMARY KEY,
    x DOUBLE PRECISION NOT NULL,
    y DOUBLE PRECISION NOT NULL,
    laid_out DOUBLE PRECISION NOT NULL
);

-- The one row that says which store state the last relayout showed.
CREATE TABLE graph_layout_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_event_id INTEGER NOT NULL,
    laid_out DOUBLE PRECISION NOT NULL,
    nodes INTEGER NOT NULL
);
