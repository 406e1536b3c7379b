"""testssl.sh against a `tls` listener with the default settings (bench/testssl.sh): no
finding rated MEDIUM or worse, apart from the accepted ones listed in that script.

Slow (over a minute): runs only with SLUICE_TESTSSL=1."""
import os
import subprocess

import pytest

import helpers

SCRIPT = os.path.join(helpers.REPO, "bench", "testssl.sh")
TESTSSL = os.environ.get("TESTSSL", "/usr/bin/testssl")  # as bench/testssl.sh


@pytest.mark.skipif(os.environ.get("SLUICE_TESTSSL") != "1",
                    reason="slow; set SLUICE_TESTSSL=1 to run testssl.sh")
@pytest.mark.skipif(not os.access(TESTSSL, os.X_OK),
                    reason=f"no {TESTSSL}: testssl.sh NOT run (make deps installs it)")
def test_no_medium_or_worse_finding(tmp_path):
    env = dict(os.environ, SLUICE_BUILD=helpers.BUILD, OUT=str(tmp_path / "testssl"),
               SEVERITY="MEDIUM")
    r = subprocess.run([SCRIPT], env=env, capture_output=True, text=True,
                       timeout=helpers.scaled(600))
    report = r.stdout + r.stderr
    assert r.returncode == 0, f"testssl findings:\n{report}"
    assert "0 finding(s) rated MEDIUM or worse" in r.stdout, report
