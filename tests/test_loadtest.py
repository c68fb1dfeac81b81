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
