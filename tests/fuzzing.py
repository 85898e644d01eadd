# -*- test-case-name: tests.test_fuzz_xmlstream,tests.test_fuzz_serverinfo,tests.test_fuzz_http -*-
"""
The Hypothesis settings of the property-based (fuzz) tests, in one place.

Every fuzz test takes its settings from L{examples}, which scales the
number of examples the test asks for by the loaded profile:

  - C{ci} (chosen when the C{CI} environment variable is set): the same
    examples on every run (C{derandomize}), no example database, so a CI
    run never fails on an input no earlier run could have tried;
  - C{dev} (the default elsewhere): as many examples, drawn anew each run,
    with the failing ones kept in C{.hypothesis/} and tried first next time;
  - C{long}: 50 times as many, for a deliberate hunt
    (C{HYPOTHESIS_PROFILE=long scripts/test tests.test_fuzz_xmlstream}).

No test has a deadline: the suite runs on shared machines, and a test may
never fail on timing. The budgets are sized so that the whole fuzz set
adds well under 30 seconds to the suite in C{ci} and C{dev}.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from twisted.logger import LogEvent, globalLogPublisher

_BASE = 100

settings.register_profile(
    "dev",
    max_examples=_BASE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", settings.get_profile("dev"), derandomize=True, database=None)
settings.register_profile("long", settings.get_profile("dev"), max_examples=_BASE * 50)

settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


def examples(count: int) -> settings:
    """
    @param count: how many examples the test wants in the C{dev} and C{ci}
        profiles.
    @return: settings with that many examples, scaled by the loaded
        profile (50 times as many in C{long}).
    """
    scale = settings.default.max_examples / _BASE
    return settings(max_examples=max(1, round(count * scale)))


class LoggedFailures:
    """
    Collects the failures logged (C{log.failure}, C{log.err}) while it is
    entered, so that a property can fail on the very example that logged
    one (trial fails the whole test on them, without naming the example).

    @ivar events: the failure events.
    """

    def __init__(self) -> None:
        self.events: list[LogEvent] = []

    def __call__(self, event: LogEvent) -> None:
        """
        Keep C{event} if it holds a failure.
        """
        if "log_failure" in event:
            self.events.append(event)

    def __enter__(self) -> LoggedFailures:
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc: object) -> None:
        globalLogPublisher.removeObserver(self)
