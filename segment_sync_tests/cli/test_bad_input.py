"""Bad input to the command line is one line naming the problem and the fix: no traceback, no
password. Database URLs the driver cannot use because of their form, a settings file nested too
deeply, a port no socket has, an unknown --destination and a logs.dir that is a file."""

from __future__ import annotations

import string
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segment_sync.cli import main

# The three database URL settings, and a command that opens each one's engine.
KEYS = {
    "loyalty_store.url": ("loyalty_store", "url", ["run", "outbound"]),
    "outbound.state_url": ("outbound", "state_url", ["run", "outbound"]),
    "inbound.buffer_url": ("inbound", "buffer_url", ["run", "inbound"]),
}
LIBPQ_KEYWORDS = frozenset(
    [
        "application_name",
        "channel_binding",
        "client_encoding",
        "connect_timeout",
        "dbname",
        "fallback_application_name",
        "gssdelegation",
        "gssencmode",
        "gsslib",
        "host",
        "hostaddr",
        "keepalives",
        "keepalives_count",
        "keepalives_idle",
        "keepalives_interval",
        "krbsrvname",
        "load_balance_hosts",
        "max_protocol_version",
        "min_protocol_version",
        "oauth_client_id",
        "oauth_client_secret",
        "oauth_issuer",
        "oauth_scope",
        "options",
        "passfile",
        "password",
        "port",
        "replication",
        "require_auth",
        "requirepeer",
        "scram_client_key",
        "scram_server_key",
        "service",
        "ssl_max_protocol_version",
        "ssl_min_protocol_version",
        "sslcert",
        "sslcertmode",
        "sslcompression",
        "sslcrl",
        "sslcrldir",
        "sslkey",
        "sslkeylogfile",
        "sslmode",
        "sslnegotiation",
        "sslpassword",
        "sslrootcert",
        "sslsni",
        "target_session_attrs",
        "tcp_user_timeout",
        "user",
        "autocommit",
        "prepare_threshold",
        "context",
        "row_factory",
        "cursor_factory",
    ]
)
SAFETY_NET_S = 60  # a hung command fails the test; no speed is measured
FIXTURE_CHECKS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# As pasted: '?', '@', ':', '/' and '#' unencoded too (the masking reads to the last '@').
passwords = st.text(
    string.ascii_letters + string.digits + "-._~?@:/#", min_size=6, max_size=16
).map(lambda tail: f"PW{tail}")
hosts = st.sampled_from(["127.0.0.1", "localhost", "[::1]"])  # no DNS: fails fast
# What follows the host's ':' that is no port: text int() refuses, or a number out of range.
unreadable_ports = st.from_regex(r"[0-9]{0,4}[a-z.,:-][0-9a-z]{0,4}", fullmatch=True).filter(
    lambda port: not port.lstrip("-").isdigit()
) | st.just("")
out_of_range_ports = st.integers(65_536, 10**7).map(str) | st.just("0")
broken_ipv6 = st.sampled_from(["[::1", "[fe80::1", "[2001:db8::5", "[::1:5432"])


@st.composite
def malformed_server_urls(draw) -> tuple[str, str]:
    """(a postgresql:// URL SQLAlchemy cannot read the host and port of, or whose port is no
    port, its password)."""
    password = draw(passwords)
    kind = draw(st.sampled_from(["unreadable port", "out of range", "broken IPv6"]))
    if kind == "broken IPv6":
        netloc = draw(broken_ipv6)
    else:
        ports = unreadable_ports if kind == "unreadable port" else out_of_range_ports
        netloc = f"{draw(hosts)}:{draw(ports)}"
    scheme = draw(st.sampled_from(["postgresql", "postgres"]))
    return f"{scheme}://sync:{password}@{netloc}/loyalty", password


def problem_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("  - ")]


def assert_no_traceback(result) -> None:
    assert result.exit_code != 0, result.output
    assert result.exc_info[0] is SystemExit, result.exc_info  # a ClickException, no traceback
    assert "Traceback" not in result.output


@given(case=malformed_server_urls(), key=st.sampled_from(sorted(KEYS)))
@FIXTURE_CHECKS
def test_a_database_url_sqlalchemy_cannot_read_is_a_settings_error_naming_the_key_and_fix(
    write_settings, case, key
):
    url, password = case
    section, field, run = KEYS[key]
    path = write_settings(**{section: {field: url}})

    for command in (["settings", "check"], run):
        result = CliRunner().invoke(main, [*command, "--settings", str(path)])

        assert_no_traceback(result)
        [line] = problem_lines(result.output)
        assert line.startswith(f"  - {key}: "), result.output
        assert "host and port" in line or "port of this database URL" in line, line
        assert "fix: write" in line, line
        assert password not in result.output and "PW" not in result.output  # nor a piece


@given(
    password=passwords,
    option=st.from_regex(r"[a-z][a-z_]{2,14}", fullmatch=True).filter(
        lambda name: name not in LIBPQ_KEYWORDS
    ),
    key=st.sampled_from(sorted(KEYS)),
)
@FIXTURE_CHECKS
def test_a_database_url_option_the_driver_refuses_is_one_line_naming_the_key_and_fix(
    write_settings, password, option, key
):
    """The form is readable, so the settings pass; opening the engine finds what the driver
    (psycopg) would refuse, before connecting, and names the setting."""
    section, field, run = KEYS[key]
    url = f"postgresql://sync:{password}@127.0.0.1:5432/loyalty?{option}=1"
    path = write_settings(**{section: {field: url}})

    result = CliRunner().invoke(main, [*run, "--settings", str(path)])

    assert_no_traceback(result)
    [line] = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert line.startswith(f"Error: {key}: cannot use postgresql://sync:[REDACTED]@127.0.0.1")
    assert "invalid connection option" in line and f"fix {key} in the settings" in line
    assert password not in result.output and "PW" not in result.output  # nor a piece


def test_a_query_value_in_the_driver_s_error_is_not_shown(write_settings):
    url = "postgresql://sync:PWpass@127.0.0.1:5432/loyalty?connect_timeout=sk-live-9f8e7d"
    path = write_settings(loyalty_store={"url": url})

    result = CliRunner().invoke(main, ["run", "outbound", "--settings", str(path)])

    assert_no_traceback(result)
    assert "loyalty_store.url: cannot use" in result.output and "connect_timeout" in result.output
    assert "sk-live-9f8e7d" not in result.output and "PWpass" not in result.output


@pytest.mark.parametrize("command", [["settings", "check"], ["run", "outbound"]], ids=" ".join)
def test_a_settings_file_nested_too_deeply_is_one_line_naming_the_file(tmp_path, command):
    path = tmp_path / "deep.yaml"
    path.write_text("general: " + "[" * 2000 + "]" * 2000 + "\n")

    result = CliRunner().invoke(main, [*command, "--settings", str(path)])

    assert_no_traceback(result)
    [line] = problem_lines(result.output)
    assert line.startswith(f"  - {path}: nested too deeply") and "fix the nesting" in line
    assert len(result.output.splitlines()) == 2, result.output  # "Error: ..." and that line


def test_a_yaml_alias_inside_itself_is_refused_not_an_endless_loop(tmp_path):
    """In a process of its own: a settings load that loops never returns."""
    path = tmp_path / "alias.yaml"
    path.write_text("general: &a [*a]\n")

    done = subprocess.run(
        [sys.executable, "-m", "segment_sync.cli", "settings", "check", "--settings", str(path)],
        capture_output=True,
        text=True,
        timeout=SAFETY_NET_S,
    )

    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [line] = problem_lines(done.stderr)
    assert line.startswith("  - general: "), done.stderr


@pytest.mark.parametrize("port", ["70000", "0", "-1"])
def test_serve_webhooks_refuses_a_port_no_socket_has(write_settings, monkeypatch, port):
    """In a process of its own: a receiver that starts anyway serves until the safety net."""
    monkeypatch.setenv("SEGMENT_WEBHOOK_SECRET", "whsec-test-123")
    path = write_settings()

    done = subprocess.run(
        [sys.executable, "-m", "segment_sync.cli", "serve-webhooks", "--settings", str(path)]
        + ["--port", port],
        capture_output=True,
        text=True,
        timeout=SAFETY_NET_S,
    )

    assert done.returncode == 2, done.stderr  # a usage error: nothing started
    assert "Traceback" not in done.stderr and "running on" not in done.stderr + done.stdout
    assert "--port" in done.stderr and "1<=x<=65535" in done.stderr


@pytest.mark.parametrize("standin", ["segment", "antavo", "segment-public-api"])
def test_a_standin_refuses_a_port_no_socket_has(standin):
    done = subprocess.run(
        [sys.executable, "-m", "segment_sync.cli", "standin", standin, "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=SAFETY_NET_S,
    )

    assert done.returncode == 2, done.stderr  # argparse's usage error: nothing started
    assert "Traceback" not in done.stderr and ":70000" not in done.stdout
    assert "argument --port: '70000' is not a port: use a number from 1 to 65535" in done.stderr


def test_logs_outbound_refuses_an_unknown_destination_as_run_outbound_does(write_settings):
    path = write_settings()
    args = ["--destination", "nope", "--settings", str(path)]

    logs = CliRunner().invoke(main, ["logs", "outbound", *args])
    run = CliRunner().invoke(main, ["run", "outbound", *args])

    for result in (logs, run):
        assert result.exit_code == 2, result.output
        assert_no_traceback(result)
        assert "no destination 'nope' in outbound.destinations" in result.output
    assert "No matching" not in logs.output
    assert "--filter 'Destination is \"nope\"'" in logs.output  # a destination removed since


@pytest.mark.parametrize(
    "command", [["logs", "outbound"], ["logs", "check"], ["logs", "sql", "SELECT 1"]], ids=" ".join
)
def test_a_logs_dir_that_is_a_file_is_named_a_file_not_missing(write_settings, tmp_path, command):
    not_a_folder = tmp_path / "logs-file"
    not_a_folder.write_text("oops")
    path = write_settings(logs={"dir": str(not_a_folder)})

    result = CliRunner().invoke(main, [*command, "--settings", str(path)])

    assert_no_traceback(result)
    assert f"{not_a_folder} (logs.dir" in result.output
    assert "is a file, not a folder" in result.output and "does not exist" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "seed", "--events", "99999999999999999999"],
        ["demo", "seed", "--profiles", "100000001"],
        ["demo", "seed", "--customers", "10000001"],
        ["demo", "run", "--events", "100000001", "--no-dagster"],
    ],
)
def test_demo_sizes_beyond_what_a_demo_needs_are_refused_before_anything_starts(
    write_settings, args
):
    """A typo of a few digits would seed for ever (red team: `--events 10^20` never ended)."""
    path = write_settings()
    extra = ["--settings", str(path)] if args[1] == "seed" else []
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "is not in the range" in result.output
