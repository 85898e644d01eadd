"""
The web endpoint: the JSON API (and, later, the graph page).
"""
