-- Each discovery step of a fetch and its result (JSON: a list of
-- [step, ok, detail]), so that the API can say why a domain is or is not
-- on the graph. Part of the facts: a change opens a new interval.
ALTER TABLE graph_domain_facts ADD COLUMN steps TEXT;
