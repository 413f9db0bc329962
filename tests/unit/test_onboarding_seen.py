"""SeenKeys: in-file duplicates found across batches, on disk, first row wins."""

from __future__ import annotations

from resim.services.onboarding.seen import SeenKeys


def test_a_key_met_in_an_earlier_batch_or_row_is_a_duplicate() -> None:
    seen = SeenKeys()
    try:
        first = seen.first_seen([[("msisdn", "+4741"), ("iccid", "891")],
                                 [("msisdn", "+4742"), ("iccid", "892")]])  # fmt: skip
        assert first == [None, None]
        second = seen.first_seen([
            [("msisdn", "+4743"), ("iccid", "891")],  # ICCID of batch 1
            [("msisdn", "+4744"), ("iccid", "894")],
            [("msisdn", "+4744"), ("iccid", "895")],  # number of the row before
            [("msisdn", "+4742"), ("iccid", "896")],  # number of batch 1, named first
        ])  # fmt: skip
        assert second == ["iccid", None, "msisdn", "msisdn"]
    finally:
        seen.close()


def test_keys_of_a_duplicate_row_are_not_remembered() -> None:
    seen = SeenKeys()
    try:
        assert seen.first_seen([[("msisdn", "+1"), ("iccid", "1")]]) == [None]
        # a duplicate by number: its ICCID 2 does not count as met
        batch = [[("msisdn", "+1"), ("iccid", "2")], [("msisdn", "+3"), ("iccid", "2")]]
        assert seen.first_seen(batch) == ["msisdn", None]
        assert seen.first_seen([[("msisdn", "+4"), ("iccid", "2")]]) == ["iccid"]
    finally:
        seen.close()


def test_a_batch_refused_by_one_key_leaves_its_other_keys_unremembered() -> None:
    # "a" is stored before "b": the batch's new "a" goes in, then "b" conflicts and
    # the whole batch must be undone, or "a" 5 would count as met later.
    seen = SeenKeys()
    try:
        assert seen.first_seen([[("b", "1")]]) == [None]
        assert seen.first_seen([[("a", "5"), ("b", "1")]]) == ["b"]
        assert seen.first_seen([[("a", "5"), ("b", "2")]]) == [None]
    finally:
        seen.close()


def test_many_keys_in_one_batch() -> None:
    seen = SeenKeys()
    try:
        keys = [[("iccid", str(n))] for n in range(25_000)]
        assert seen.first_seen(keys) == [None] * 25_000
        again = seen.first_seen([[("iccid", str(n))] for n in range(24_990, 25_010)])
        assert again == ["iccid"] * 10 + [None] * 10
    finally:
        seen.close()


def test_numbers_and_text_never_alias() -> None:
    seen = SeenKeys()
    try:
        keys = ["4741", "+4741", "04741", "89470000000000000007", "ACC-1", "999999999999999999",
                "8947000000000000007", "+8947000000000000007", "9999999999999999999",
                "+9999999999999999999", "9223372036854775807", "9223372036854775808"]  # fmt: skip
        assert seen.first_seen([[("k", k)] for k in keys]) == [None] * len(keys)
        assert seen.first_seen([[("k", k)] for k in keys]) == ["k"] * len(keys)
        assert seen.first_seen([[("k", "+04741")], [("k", "4742")]]) == [None, None]
    finally:
        seen.close()
