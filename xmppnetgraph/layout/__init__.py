# -*- test-case-name: tests.test_layout_service -*-
"""
Positions for the graph's nodes, computed on the server so that the page
draws a settled picture at its first frame: a new node is placed next to
its neighbours at once (L{place}), a full relayout runs now and then in a
worker process seeded from the previous positions (L{compute}, run by
L{worker}), and the positions are kept in the node's database
(L{store}). L{service} ties them to the change feed and the web API.
"""
