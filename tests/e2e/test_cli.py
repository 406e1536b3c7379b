"""The command line: --version, --help, a wrong argument, the default configuration path,
and start-up failures that exit 2 with a one-line reason (here: the admin token file).

`-t` (configuration check) is covered by test_config_check.py."""
import os
import re
import subprocess

import pytest

import helpers
from helpers import SLUICE_BIN, connect, echo_roundtrip, free_port, l4_config, scaled

VERSION_H = os.path.join(helpers.REPO, "src", "version.h")


def run(*args, cwd=None):
    r = subprocess.run([SLUICE_BIN, *args], capture_output=True, text=True, cwd=cwd,
                       timeout=scaled(10), stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr


def source_version():
    with open(VERSION_H) as f:
        return re.search(r'#define SLUICE_VERSION "([^"]+)"', f.read()).group(1)


def test_version():
    """--version: exit 0; the version, OpenSSL and the libraries' versions, the features
    built in, on stdout."""
    rc, out, err = run("--version")
    assert (rc, err) == (0, ""), (rc, err)
    lines = out.splitlines()
    assert lines[0] == f"sluice {source_version()}", out
    fields = dict(line.split(": ", 1) for line in lines[1:])
    assert set(fields) == {"OpenSSL", "libyaml", "c-ares", "nghttp2", "features"}, out
    # the OpenSSL sluice runs with, as the openssl tool of this host reports it
    library = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout
    assert fields["OpenSSL"] in library, (fields["OpenSSL"], library)
    for lib in ("libyaml", "c-ares", "nghttp2"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", fields[lib]), (lib, out)
    features = fields["features"].split()
    for f in ("tcp", "tls", "tls-passthrough", "proxy-protocol-v1", "proxy-protocol-v2",
              "hot-reload"):
        assert f in features, out


def test_help():
    """--help: exit 0, the usage on stdout naming every form of the command line and the
    exit codes."""
    rc, out, err = run("--help")
    assert (rc, err) == (0, ""), (rc, err)
    assert out.startswith("usage: sluice"), out
    for form in ("-c FILE", "-t", "--version", "--help"):
        assert form in out, (form, out)
    assert "exit codes: 0 clean stop, 1 configuration error, 2 other start-up failure" in out


@pytest.mark.parametrize("args", [["--bogus"], ["-c"], ["extra"]])
def test_wrong_argument(args):
    """An unknown argument (or -c without its FILE): exit 2, the reason and the usage on
    stderr, nothing on stdout."""
    rc, out, err = run(*args)
    assert (rc, out) == (2, ""), (rc, out)
    first, *rest = err.splitlines()
    assert first == f"sluice: unknown argument '{args[-1]}'", err
    assert rest and rest[0].startswith("usage: sluice"), err


def test_default_configuration_is_sluice_yaml_in_the_working_directory(demo, tmp_path):
    """Without -c, sluice reads ./sluice.yaml."""
    d = demo("echo")
    port = free_port()
    (tmp_path / "sluice.yaml").write_text(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}]))
    out, err = str(tmp_path / "default.out"), str(tmp_path / "default.err")
    p = helpers._spawn([SLUICE_BIN], out, err, cwd=str(tmp_path))
    helpers.wait_for(lambda: port in helpers.listening_ports() or p.poll() is not None,
                     scaled(10), what="sluice listening")
    assert p.poll() is None, helpers.read_text(err)
    c = connect(port)
    echo_roundtrip(c)
    c.close()
    assert "config sluice.yaml" in helpers.read_text(err)
    p.terminate()
    assert p.wait(timeout=scaled(10)) == 0
    helpers._forget(p)


# ---------------------------------------------------------------------------------------
# admin.token_file at start


def token_case(tmp_path, case):
    """(path, reason) for an admin.token_file of the given kind (none readable by others,
    which would add a warning line)."""
    path = tmp_path / "admin.token"
    if case == "missing":
        return str(path), "No such file or directory"
    if case == "directory":
        path.mkdir(mode=0o700)
        return str(path), "Is a directory"
    path.write_text({"empty": "", "whitespace": " \n\t\n"}[case])
    path.chmod(0o600)
    return str(path), "the file is empty"


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "whitespace"])
def test_unusable_token_file_is_a_startup_failure(sluice, demo, tmp_path, case):
    """An admin.token_file that cannot be read (missing; a directory, whose read fails:
    the tests run as root, who reads a mode 000 file) or holds no token: exit 2 with one
    line naming the file and the reason; no listener was left open."""
    d = demo("echo")
    path, reason = token_case(tmp_path, case)
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}],
        admin={"bind": f"127.0.0.1:{aport}", "token_file": path}), wait=False)
    assert s.wait_exit(scaled(10)) == 2, s.stderr()
    lines = s.stderr().splitlines()
    assert len(lines) == 1, lines
    assert lines[0] == f"sluice: admin.token_file {path}: {reason}", lines
    assert not {port, aport} & helpers.listening_ports()


def test_token_file_readable_by_everyone_warns(sluice, demo, tmp_path):
    """A token file that every user can read still works, with a warning at start."""
    d = demo("echo")
    path = tmp_path / "admin.token"
    path.write_text("tok\n")
    path.chmod(0o644)
    port, aport = free_port(), free_port()
    s = sluice(l4_config(
        listeners=[{"name": "front", "bind": f"127.0.0.1:{port}", "backend": "pool"}],
        backends=[{"name": "pool", "servers": [{"address": d.address}]}],
        admin={"bind": f"127.0.0.1:{aport}", "token_file": str(path)}))
    s.wait_listening([aport])
    assert f"warn: admin.token_file {path} is readable by every user (chmod 600 it)" in s.stderr()
    s.stop()
