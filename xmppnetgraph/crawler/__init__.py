# -*- test-case-name: tests.test_crawler_discovery -*-
"""
The aggregator: finds the domains that publish XEP-0485 server information,
reads their items, and keeps the graph current.

L{xmppnetgraph.crawler.discovery} is the protocol part for one domain
(XEP-0485 section 3: disco#info, the serverinfo form or disco#items, the
items of the node, the XEP-0092 version); the crawler schedules it and
stores what it finds.
"""
