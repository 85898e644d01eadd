# -*- test-case-name: tests.test_web_views -*-
"""
The statistics view (C{/stats}) and the "Add your server" view (C{/add}) in
a real browser, against a real node and SQLite store (L{PageFixture}).
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from tests.browser import browserSkip
from tests.test_web_page import PageFixture


def number(text: str) -> int:
    """
    @return: a count as the page formats it ("1,234") as an integer.
    """
    return int(text.replace(",", ""))


class StatsViewTests(PageFixture, TestCase):
    """
    C{/stats} shows the figures of C{/api/stats} and draws its plot.
    """

    skip = browserSkip()
    timeout = 120

    async def setUp(self) -> None:
        await self.startAll()
        await self.fill()

    async def test_figures(self) -> None:
        """
        Every headline figure is the one of C{/api/stats}, the hubs link to
        the map focused on them, the software and the security posture are
        listed, the export links are there, the navigation marks the view,
        and nothing went wrong in the console.
        """
        page = await self.openPage("/stats")

        def look() -> tuple[Any, dict[str, str], list[list[str]], list[str], list[str], str]:
            stats = page.evaluate("fetch('/api/stats').then((r) => r.json())")
            figures = page.evaluate(
                "Object.fromEntries([...document.querySelectorAll('[data-figure]')]"
                ".map((e) => [e.dataset.figure, e.textContent]))"
            )
            hubs = page.evaluate(
                "[...document.querySelectorAll('.hubs a')]"
                ".map((a) => [a.textContent, a.getAttribute('href')])"
            )
            rows = page.evaluate(
                "[...document.querySelectorAll('table.shares tbody th')].map((e) => e.textContent)"
            )
            exports = page.evaluate(
                "[...document.querySelectorAll('.exports a')].map((a) => a.getAttribute('href'))"
            )
            current = page.inner_text("nav [aria-current=page]")
            return stats, figures, hubs, rows, exports, current

        stats, figures, hubs, rows, exports, current = await self.browser.run(look)
        domains = stats["domains"]
        for key in ("named", "anonymous", "publishing", "stale", "known"):
            self.assertEqual(number(figures[key]), domains[key], key)
        self.assertEqual(number(figures["links"]), stats["links"])
        self.assertEqual(number(figures["components"]), stats["components"]["count"])
        confirmed = round(100 * stats["confirmed_links"] / stats["links"])
        self.assertEqual(figures["confirmed"], f"{confirmed} %")
        self.assertEqual(
            hubs, [[hub["domain"], f"/?focus={hub['domain']}"] for hub in stats["hubs"]]
        )
        self.assertEqual(stats["hubs"][0]["domain"], "a.example")
        self.assertIn("Prosody", rows)
        self.assertIn("ejabberd", rows)
        self.assertIn("TLSv1.3", rows)
        self.assertIn("certificate (SASL EXTERNAL)", rows)
        self.assertEqual(stats["security"]["domains"], 2)
        self.assertEqual(figures["sasl-external"], "100 %")
        self.assertEqual(figures["cert-valid"], "100 %")
        self.assertEqual(figures["direct-tls"], "0 %")
        self.assertEqual(exports, ["/api/graph.graphml", "/api/graph.gexf", "/api/graph"])
        self.assertEqual(current, "Statistics")
        self.assertEqual(page.errors, [])

    async def test_plot(self) -> None:
        """
        The degree distribution is an SVG with one bar per degree bin,
        each as tall as its count is large (on a logarithmic axis): the
        bars hold every node of the graph.
        """
        page = await self.openPage("/stats")

        def look() -> tuple[Any, list[dict[str, Any]]]:
            stats = page.evaluate("fetch('/api/stats').then((r) => r.json())")
            bars = page.evaluate(
                "[...document.querySelectorAll('svg[data-plot=degree] rect.bar')].map((r) =>"
                " ({degree: r.dataset.degree, nodes: Number(r.dataset.nodes),"
                " height: r.getBBox().height}))"
            )
            return stats, bars

        stats, bars = await self.browser.run(look)
        distribution = {d["degree"]: d["nodes"] for d in stats["degree_distribution"]}
        # a.example has 3 links: the bin 2-3; its three peers 1 each.
        self.assertEqual(distribution, {1: 3, 3: 1})
        self.assertEqual([(bar["degree"], bar["nodes"]) for bar in bars], [("1", 3), ("2–3", 1)])
        self.assertGreater(bars[0]["height"], bars[1]["height"])
        self.assertGreater(bars[1]["height"], 0)
        self.assertEqual(page.errors, [])


class AddViewTests(PageFixture, TestCase):
    """
    C{/add}: the instructions, the badge hint, and the form that submits a
    domain to a crawling node and follows what its crawler finds.
    """

    skip = browserSkip()
    timeout = 120

    async def setUp(self) -> None:
        await self.startAll(crawl=True)

    async def submit(self, page: Any, domain: str, wait: str) -> dict[str, str]:
        """
        Type C{domain} into the form, submit it with the Enter key, and wait
        for C{wait} (a selector) in the result.

        @return: the texts of the result's C{data-result} parts.
        """

        def go() -> dict[str, str]:
            page.fill("#domain", domain)
            page.press("#domain", "Enter")
            page.wait_for_selector(f"#result {wait}", timeout=60_000)
            return dict(
                page.evaluate(
                    "[...document.querySelectorAll('#result [data-result]')]"
                    ".map((e) => [e.dataset.result, e.textContent])"
                )
            )

        return await self.browser.run(go)

    async def test_crawled(self) -> None:
        """
        A valid domain is queued (the answer's message), then the crawler's
        steps are shown once its fetch is over: here the domain has no DNS
        (the node resolves nothing), which the first step says; the badge
        snippet names the domain.
        """
        page = await self.openPage("/add")
        result = await self.submit(page, "New.Example", "[data-state=done]")
        self.assertIn("new.example", result["submitted"])
        self.assertIn("new.example", result["why"])
        self.assertIn("steps", result, result)

        def look() -> tuple[Any, str, list[str]]:
            api = page.evaluate("fetch('/api/domains/new.example').then((r) => r.json())")
            steps = page.evaluate(
                "[...document.querySelectorAll('#result .steps li')].map((li) => li.textContent)"
            )
            return api, page.inner_text("#badge-html"), steps

        api, badge, steps = await self.browser.run(look)
        self.assertEqual(result["why"], api["why"])
        expected = api["facts"]["steps"]
        for shown, step in zip(steps, expected, strict=True):
            self.assertIn(step["step"], shown)
            self.assertIn(step["detail"], shown)
        self.assertFalse(expected[-1]["ok"])
        self.assertIn("/badge/new.example.svg", badge)
        again = await self.submit(page, "new.example", "[data-state=done]")
        self.assertIn("new.example was fetched", again["submitted"])
        self.assertEqual(again["why"], api["why"])
        self.assertEqual(page.errors, [])

    async def test_rateLimited(self) -> None:
        """
        Past the submissions one address may make in an hour, the form
        shows the 429's message and how long to wait.
        """
        page = await self.openPage("/add")
        statuses = await self.browser.run(
            page.evaluate,
            "Promise.all([...Array(10).keys()].map((i) => fetch('/api/submit', {method: 'POST',"
            " headers: {'content-type': 'application/json'},"
            " body: JSON.stringify({domain: `d${i}.example`})}).then((r) => r.status)))",
        )
        self.assertEqual(statuses, [202] * 10)
        result = await self.submit(page, "more.example", "[data-result=error]")
        self.assertIn("Too many submissions from your address: at most 10", result["error"])
        self.assertIn("(wait 60 minutes)", result["error"])
        self.assertEqual([e for e in page.errors if "status of 429" not in e], [], page.errors)

    async def test_invalid(self) -> None:
        """
        An invalid domain shows the API's 400 message, as text; a name with
        markup in it is shown as text too, and makes no element.
        """
        page = await self.openPage("/add")
        result = await self.submit(page, "a..example", "[data-result=error]")
        self.assertEqual(result["error"], "domain: 'a..example' has an empty label")
        result = await self.submit(page, "<b>x</b>.example", "[data-result=error]")
        self.assertIn("'<b>x</b>.example' is not a bare domain", result["error"])
        bold = await self.browser.run(
            page.evaluate, "document.querySelectorAll('#result b').length"
        )
        self.assertEqual(bold, 0)
        # The browser logs the 400 answers as failed loads; nothing else.
        self.assertEqual([e for e in page.errors if "status of 400" not in e], [], page.errors)
