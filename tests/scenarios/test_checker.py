"""The history set checker on hand-made stores: each way of losing data is caught and named."""

from __future__ import annotations

from shakedown.scenarios.checker import AckRecord, acked_from, check_set, unsure_from

ACKS = [AckRecord(100, s, f"d100-{s}", f"p100-{s}") for s in (1, 2, 3)] + \
       [AckRecord(200, s, f"d200-{s}", f"p200-{s}") for s in (1, 2)]


Store = dict[tuple[int, int], tuple[str, str]]


def store(acks: list[AckRecord], **extra: tuple[str, str]) -> Store:
    found = {a.key: (a.digest, a.payload) for a in acks}
    for key, value in extra.items():
        o, s = key.removeprefix("k").split("_")
        found[(int(o), int(s))] = value
    return found


def test_every_ack_on_every_node_is_valid() -> None:
    result = check_set(ACKS, [], {"node-100": store(ACKS), "node-200": store(ACKS)})
    assert result.valid, result.summary
    assert "5 acknowledged envelopes present exactly once" in result.summary


def test_a_lost_envelope_is_named_with_its_node_and_key() -> None:
    result = check_set(ACKS, [], {"node-100": store(ACKS), "node-200": store(ACKS[:-1])})
    assert not result.valid
    assert result.summary.startswith("node-200: 1 lost (e.g. 200:2)")
    assert result.details["nodes"]["node-200"]["lost"] == 1
    assert result.details["nodes"]["node-100"]["lost"] == 0


def test_other_bytes_at_the_key_are_corrupt() -> None:
    bad = store(ACKS)
    bad[(100, 2)] = ("tampered", "p100-2")
    result = check_set(ACKS, [], {"node-100": store(ACKS), "node-300": bad})
    assert not result.valid and "node-300: 1 corrupt (e.g. 100:2)" in result.summary


def test_a_payload_stored_twice_is_a_duplicate() -> None:
    twice = store(ACKS, k100_4=("d100-4", "p100-1"))
    result = check_set(ACKS, [], {"node-100": twice})
    assert not result.valid and "1 duplicated" in result.summary


def test_a_client_envelope_sent_to_two_nodes_is_stored_once_per_node() -> None:
    """Propagation: the same client envelope published to node-100 and node-200 lives under
    both originators; a third copy is a duplicate."""
    both = [*ACKS, AckRecord(100, 4, "d100-4", "shared"), AckRecord(200, 3, "d200-3", "shared")]
    assert check_set(both, [], {"node-100": store(both)}).valid
    third = check_set(both, [], {"node-100": store(both, k200_4=("d200-4", "shared"))})
    assert not third.valid and "1 duplicated (e.g. shared)" in third.summary


def test_an_envelope_no_publish_carried_is_a_phantom() -> None:
    result = check_set(ACKS, [], {"node-100": store(ACKS, k300_1=("x", "nobody-sent-this"))})
    assert not result.valid and "1 phantom (e.g. 300:1)" in result.summary


def test_unsure_publishes_may_be_present_or_absent_and_are_counted() -> None:
    landed = store(ACKS, k100_4=("d", "unsure-a"), k100_5=("e", "unsure-b"))
    partial = store(ACKS, k100_4=("d", "unsure-a"))
    result = check_set(ACKS, ["unsure-a", "unsure-b", "unsure-c"],
                       {"node-100": landed, "node-200": partial})
    assert result.valid, result.summary
    assert result.details["unsure_outcome"] == {"present_everywhere": 1, "absent_everywhere": 1,
                                                "partial": 1}


def test_one_sequence_id_acknowledged_with_two_digests_is_invalid() -> None:
    conflicting = [*ACKS, AckRecord(100, 1, "other-bytes", "p-x")]
    result = check_set(conflicting, [], {"node-100": store(ACKS)})
    assert not result.valid and "acknowledged twice" in result.summary


def test_no_node_to_check_is_invalid() -> None:
    assert not check_set(ACKS, [], {}).valid


def test_acks_and_unsure_payloads_come_from_the_history() -> None:
    events = [
        {"type": "invoke", "f": "publish", "op": 1},
        {"type": "ok", "f": "publish", "op": 1, "acks": [[100, 1, "d", "p"]]},
        {"type": "info", "f": "publish", "op": 2, "error": "DEADLINE_EXCEEDED",
         "payloads": ["u1", "u2"]},
        {"type": "fail", "f": "publish", "op": 3, "error": "INVALID_ARGUMENT", "payloads": ["u3"]},
        {"type": "ok", "f": "fault", "op": 4},
    ]
    assert acked_from(events) == [AckRecord(100, 1, "d", "p")]
    assert unsure_from(events) == ["u1", "u2", "u3"]
