"""The load test's own pieces (bench/loadtest.py); `make loadtest` runs the whole of it against gunicorn."""

import pytest

from bench import loadtest


def test_percentiles_are_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert loadtest.percentile(values, 0.5) == 50
    assert loadtest.percentile(values, 0.99) == 99
    assert loadtest.percentile([0.3], 0.99) == 0.3
    assert loadtest.percentile([], 0.5) == 0


def test_a_tally_counts_server_errors_and_requests_without_answer():
    tally = loadtest.Tally()
    for seconds, status in [(0.1, 200), (0.2, 201), (2.5, 502), (0.1, None), (0.3, 404)]:
        tally.record(seconds, status)
    assert (tally.server_errors, tally.unexpected) == (1, 3)
    assert tally.row("x", elapsed=1.0).endswith("| 1 | 3 | 1 |")


def test_the_section_replaces_the_previous_one_and_keeps_the_rest():
    first = f"{loadtest.SECTION_START}\nold figures\n{loadtest.SECTION_END}\n"
    document = loadtest.replace_section("# Benchmarks\n\ntable\n", first)
    assert document == f"# Benchmarks\n\ntable\n\n{first}"
    second = f"{loadtest.SECTION_START}\nnew figures\n{loadtest.SECTION_END}\n"
    assert loadtest.replace_section(document, second) == f"# Benchmarks\n\ntable\n\n{second}"
    assert loadtest.kept_section(document) == f"\n{first}"
    assert loadtest.kept_section("# Benchmarks\n") == ""


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["--database-url", "postgres://postgres@10.0.0.5:5432/x"], "stays on loopback"),
        (["--redis-url", "redis://192.168.1.2:6379/0"], "stays on loopback"),
        (["--duration", "3600"], "--duration is between"),
        (["--max-requests", "10000000"], "--max-requests is between"),
        (["--concurrency", "500"], "--concurrency is at most"),
    ],
)
def test_it_refuses_to_leave_loopback_or_run_unbounded(args, refusal, capsys):
    with pytest.raises(SystemExit):
        loadtest.main(args)
    assert refusal in capsys.readouterr().err


WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000
  1 threads and 8 connections
  Latency Distribution
     50%    6.70ms
     75%   10.20ms
     90%   15.00ms
     99%    1.85s
  1342 requests in 10.00s, 1.2MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:    134.20
Transfer/sec:    123.00KB
"""


def test_it_reads_wrks_figures():
    figures = loadtest.parse_wrk(WRK_OUTPUT)
    assert figures == {"per_second": 134.2, "requests": 1342, "p50": pytest.approx(0.0067), "p99": 1.85, "errors": 7}


def test_the_bot_api_section_replaces_its_own_markers_only():
    document = f"# Benchmarks\n\n{loadtest.SECTION_START}\nload\n{loadtest.SECTION_END}\n"
    first = loadtest.replace_bot_api_section(document, f"{loadtest.BOT_API_START}\nold\n{loadtest.BOT_API_END}\n")
    assert first.endswith(f"{loadtest.SECTION_END}\n\n{loadtest.BOT_API_START}\nold\n{loadtest.BOT_API_END}\n")
    second = loadtest.replace_bot_api_section(first, f"{loadtest.BOT_API_START}\nnew\n{loadtest.BOT_API_END}\n")
    assert "old" not in second and "new" in second and "\nload\n" in second


def test_the_wrk_scripts_send_the_stored_profiles_and_fresh_ids():
    sample = [{"foreign_id": f"p-{n}", "first_name": "Hélène", "last_name": "Ермакова"} for n in range(600)]
    scripts = loadtest.bot_api_scripts("hxs_key", sample, run="r1")
    repeat, _ = scripts["repeat visits (PUT, same profile)"]
    assert 'wrk.headers["Authorization"] = "Bearer hxs_key"' in repeat
    assert '{[==[p-0]==], [==[{"first_name": "H\\u00e9l\\u00e8ne"' in repeat
    batch, per_request = scripts["batch of 500, people already there"]
    assert per_request == 500 and "/api/v1/subscribers/batch" in batch
    first, _ = scripts["first contacts (PUT, new id)"]
    assert '"wrk-r1-" .. tid .. "-" .. counter' in first


def test_a_point_is_between_2_and_60_seconds(capsys):
    with pytest.raises(SystemExit):
        loadtest.main(["--bot-api", "--point-seconds", "600"])
    assert "--point-seconds is between" in capsys.readouterr().err
