"""The harness's interleaved rounds: how several short runs become one row and a ratio.

Pure arithmetic over LoadResult values (no server): the median is what the table reports,
so a round the machine slowed down in cannot pull the ratio the way a mean would.
"""

from __future__ import annotations

import argparse
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

from harness import LoadResult, describe_ratio, round_ratios  # noqa: E402


def result(ops: int, seconds: float = 2.0, *, errors=None, cpu: float = 0.0) -> LoadResult:
    return LoadResult(ops, seconds, [float(ops)] * 2, dict(errors or {}), cpu, cpu / 2)


def test_merged_adds_up_operations_time_latencies_errors_and_cpu():
    merged = LoadResult.merged([result(400, errors={"token:400": 1}, cpu=800.0),
                                result(600, errors={"token:400": 2, "socket": 1}, cpu=900.0)])
    assert merged.ops == 1000 and merged.seconds == 4.0
    assert merged.rate == 250.0  # the mean over the rounds, not the last round's rate
    assert sorted(merged.latencies_ms) == [400.0, 400.0, 600.0, 600.0]
    assert merged.errors == {"token:400": 3, "socket": 1}
    assert merged.error_count == 4  # an error in any round fails the run
    assert merged.cpu_per_op == pytest.approx(1.7)
    assert merged.backend_per_op == pytest.approx(0.85)


def test_the_ratio_is_the_median_of_each_rounds_own_ratio():
    mine = [result(400), result(100), result(440)]  # the second round: a slow minute
    peer = [result(800), result(200), result(400)]
    ratios = round_ratios(mine, peer)
    assert ratios == pytest.approx([0.5, 0.5, 1.1])
    assert describe_ratio(ratios, "oidc-provider") == \
        "0.50× oidc-provider (median of 3 rounds: 0.50–1.10)"


def test_a_slow_round_moves_both_sides_and_so_not_the_ratio():
    # The machine halves both rates in round 2; the totals' ratio stays, and so does the
    # median, where one provider measured in the fast minute and one in the slow would not.
    mine = [result(300), result(150), result(300)]
    peer = [result(600), result(300), result(600)]
    assert describe_ratio(round_ratios(mine, peer), "x").startswith("0.50× x")


def test_one_round_is_said_plainly_and_no_round_says_nothing():
    assert describe_ratio([0.6], "oidc-provider") == "0.60× oidc-provider"
    assert describe_ratio([], "oidc-provider") == ""


def test_rounds_of_different_counts_are_a_bug_not_a_ratio():
    with pytest.raises(ValueError):
        round_ratios([result(1)], [result(1), result(1)])


def test_a_round_with_nothing_from_the_peer_is_left_out():
    assert round_ratios([result(100), result(100)], [result(0), result(200)]) == [0.5]


def test_the_rounds_alternate_their_order_and_refuse_an_empty_run():
    import run

    class Named:
        def __init__(self, name):
            self.name = name

    order = []

    def run_slice(provider, number):
        order.append((number, provider.name))
        return result(10)

    args = argparse.Namespace(rounds=3, seconds=6)
    a, b, c = Named("A"), Named("B"), Named("C")
    runs = run.in_rounds([a, b, c], args, run_slice)
    assert order == [(0, "A"), (0, "B"), (0, "C"), (1, "C"), (1, "B"), (1, "A"),
                     (2, "A"), (2, "B"), (2, "C")]
    assert {name: len(rs) for name, rs in runs.items()} == {"A": 3, "B": 3, "C": 3}
    assert run.slice_seconds(args) == 2
    assert run.slice_seconds(argparse.Namespace(rounds=3, seconds=2)) == 1  # wrk's minimum
    with pytest.raises(run.BenchError, match="measured nothing"):
        run.in_rounds([a], args, lambda provider, number: result(0, seconds=0.0))


def test_rounds_below_one_are_refused():
    import run

    with pytest.raises(SystemExit):
        run.parse_args(["--rounds", "0"])
    assert run.parse_args([]).rounds == 3
