"""Which shard a Wukong falls in: stable across processes (not Python's salted hash), spread evenly."""

from collections import Counter

from reconciler.sharding import shard_of


def test_a_wukongs_shard_is_stable_and_in_range():
    assert shard_of("team-a", "web", 6) == 1  # sha256 of "team-a/web": the same in every replica
    assert all(0 <= shard_of("ns", f"vm{i}", 6) < 6 for i in range(100))


def test_shards_are_spread_evenly():
    counts = Counter(shard_of(f"ns{i % 7}", f"vm{i}", 6) for i in range(6000))
    assert min(counts.values()) > 850 and max(counts.values()) < 1150, counts
