# -*- test-case-name: tests.test_http -*-
"""
The web endpoint: the JSON API (and, later, the graph page).
"""
