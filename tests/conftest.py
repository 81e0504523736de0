"""Suite-wide rules: in CI (CI=true) a skipped test is a failure, since a skip there hides a
missing install step. With CLARION_EXPECT_COMPILED=1 (`make test-compiled`) the run refuses
to start unless the mypyc-compiled modules are the ones imported."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CLARION_EXPECT_COMPILED") != "1":
        return
    import clarion.node
    import clarion.transport.server

    for module in (clarion.node, clarion.transport.server):
        if not (module.__file__ or "").endswith(".so"):
            raise pytest.UsageError(f"expected the compiled build, imported {module.__file__}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped:
        reporter.write_line(f"CI: {skipped} test(s) skipped; every test must run in CI", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
