# -*- test-case-name: tests.test_store_database -*-
"""
The node's database: SQLite (default, a file in the data directory) or
PostgreSQL, behind one interface per concern.
"""
