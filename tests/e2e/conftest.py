"""pytest fixtures for the end-to-end suite.

    demo(mode="echo", name=None, extra=())  -> helpers.Demo, a running sluice-demo
    sluice(config_text, **kw)                -> helpers.Sluice, a running build/sluice
    blackhole()                              -> helpers.Blackhole, an address that never answers
    scripted(handler)                        -> helpers.ScriptedServer

Everything a test starts is stopped at teardown, whatever the outcome: processes still
running are killed. A sluice whose process log carries a sanitizer report fails the test,
and so does a scripted server whose handler raised (a handler that expects an error
catches it and returns it as its result).
Logs stay in the test's tmp_path (pytest prints its location on failure).
"""
import os
import sys
import traceback

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import helpers  # noqa: E402


def pytest_report_header(config):
    return [f"sluice binaries: {helpers.BUILD} (time scale x{helpers.TIME_SCALE:g})"]


@pytest.fixture(scope="session", autouse=True)
def _binaries():
    for path in (helpers.SLUICE_BIN, helpers.DEMO_BIN):
        if not os.access(path, os.X_OK):
            pytest.exit(f"missing {path}: run `make all` (or set SLUICE_BUILD)", returncode=2)
    yield
    helpers.kill_all_live()


@pytest.fixture(autouse=True)
def _cleanup_processes():
    yield
    helpers.kill_all_live()


@pytest.fixture
def demo(tmp_path):
    started = []

    def make(mode="echo", name=None, extra=()):
        d = helpers.Demo(str(tmp_path), mode=mode, name=name, extra=extra)
        started.append(d)
        return d

    yield make
    for d in started:
        if d.proc.poll() is None:
            d.stop()


@pytest.fixture
def sluice(tmp_path):
    started = []

    def make(config_text, **kw):
        s = helpers.Sluice(str(tmp_path), config_text, name=f"sluice{len(started) or ''}", **kw)
        started.append(s)
        return s

    yield make
    reports = []
    for s in started:
        s.kill()
        report = helpers.sanitizer_report(s.stderr())
        if report:
            reports.append(report)
    if reports:
        pytest.fail("sanitizer report in sluice's stderr:\n" + "\n".join(reports),
                    pytrace=False)


@pytest.fixture
def blackhole():
    made = []

    def make():
        b = helpers.Blackhole()
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture
def backend():
    """A factory of recording HTTP backends (httpbackend.HttpBackend(**kw)), closed after
    the test. Modules that need another kind of backend define their own `backend`."""
    from httpbackend import HttpBackend
    made = []

    def make(**kw):
        b = HttpBackend(**kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture
def scripted():
    made = []

    def make(handler):
        s = helpers.ScriptedServer(handler)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
    errors = [e for s in made for e in s.errors]
    if errors:
        pytest.fail(f"{len(errors)} scripted server handler(s) raised; the first:\n" +
                    "".join(traceback.format_exception(errors[0])), pytrace=False)
