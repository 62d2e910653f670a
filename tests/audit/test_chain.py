"""The hash chain: contiguous seqs, linked hashes, and verify finding every kind of tampering."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from helpdesk.logs import address_prefix
from helpdesk.models.audit import GENESIS_HASH
from helpdesk.services import audit
from tests.audit.helpers import append, chain, head, tamper
from tests.factories import make_org


@pytest.fixture
def orgs(session: Session) -> tuple[int, int]:
    """Two orgs with no events yet: alpha gets 6 events, beta 4 (interleaved)."""
    alpha, beta = make_org(session, "alpha").id, make_org(session, "beta").id
    for _ in range(2):
        append(session, alpha, 3)
        append(session, beta, 2)
    return alpha, beta


def assert_intact(session: Session, org_id: int | None, count: int) -> None:
    result = audit.verify(session, org_id)
    assert (result.ok, result.count, result.broken_seq, result.reason) == (True, count, None, "")


def test_chain_grows_with_contiguous_seqs_and_linked_hashes(
    session: Session, orgs: tuple[int, int]
) -> None:
    alpha, beta = orgs
    for org_id, count in ((alpha, 6), (beta, 4)):
        rows = chain(session, org_id)
        assert [r.seq for r in rows] == list(range(1, count + 1))
        assert rows[0].prev_hash == GENESIS_HASH
        assert all(r.prev_hash == before.hash for before, r in pairwise(rows))
        assert len({r.hash for r in rows}) == count
        assert head(session, org_id) == (count, rows[-1].hash)
        assert_intact(session, org_id, count)
    assert chain(session, alpha)[0].hash != chain(session, beta)[0].hash  # org_id is hashed


def test_events_of_one_transaction_take_consecutive_seqs(
    session: Session, orgs: tuple[int, int]
) -> None:
    alpha, beta = orgs
    rows = [audit.record(session, alpha, "test.batch", data={"n": n}) for n in range(3)]
    audit.record(session, beta, "test.batch")
    audit.record(session, None, "test.site")
    assert rows[0].hash is None  # numbered and hashed only when the transaction commits
    session.commit()
    assert [r.seq for r in rows] == [7, 8, 9]
    assert [r.seq for r in chain(session, beta)] == [1, 2, 3, 4, 5]
    assert [r.action for r in chain(session, None)] == ["test.site"]
    assert_intact(session, alpha, 9)
    assert_intact(session, None, 1)


def test_a_rolled_back_transaction_leaves_no_event_and_no_gap(
    session: Session, orgs: tuple[int, int]
) -> None:
    alpha, _beta = orgs
    audit.record(session, alpha, "test.refused")
    session.rollback()
    audit.record(session, alpha, "test.kept")
    session.commit()
    assert [(r.seq, r.action) for r in chain(session, alpha)][-2:] == [
        (6, "test.appended"),
        (7, "test.kept"),
    ]
    assert_intact(session, alpha, 7)


def test_an_empty_chain_is_intact(session: Session) -> None:
    org_id = make_org(session, "quiet").id
    assert_intact(session, org_id, 0)
    assert_intact(session, None, 0)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor_id", "4242"),
        ("action", "'test.innocent'"),
        ("target_type", "'other'"),
        ("target_id", "'999'"),
        ("data", """'{"i": 99}'::jsonb"""),
        ("ip_prefix", "'10.0.0.0/24'"),
        ("request_id", "'forged-request-id'"),
        ("created_at", "created_at - interval '1 second'"),
        ("prev_hash", "repeat('a', 64)"),
        ("hash", "repeat('b', 64)"),
    ],
)
def test_an_update_of_any_hashed_column_is_found_at_its_seq(
    session: Session, orgs: tuple[int, int], column: str, value: str
) -> None:
    alpha, beta = orgs
    sql = f"UPDATE audit_events SET {column} = {value} WHERE org_id = :o AND seq = 3"  # noqa: S608
    tamper(session, sql, o=alpha)
    result = audit.verify(session, alpha)
    assert (result.broken_seq, result.count) == (3, 2)
    assert result.reason
    assert_intact(session, beta, 4)


def test_an_event_moved_to_another_org_breaks_both_chains(
    session: Session, orgs: tuple[int, int]
) -> None:
    alpha, beta = orgs
    tamper(session, "UPDATE audit_events SET org_id = :b WHERE org_id = :a AND seq = 5",
           a=alpha, b=beta)  # fmt: skip
    assert audit.verify(session, alpha).broken_seq == 5
    moved = audit.verify(session, beta)
    assert moved.broken_seq == 5
    assert "hash does not match" in moved.reason


def test_a_renumbered_event_is_found(session: Session, orgs: tuple[int, int]) -> None:
    alpha, _beta = orgs
    tamper(session, "UPDATE audit_events SET seq = 60 WHERE org_id = :o AND seq = 2", o=alpha)
    result = audit.verify(session, alpha)
    assert result.broken_seq == 2
    assert "seq 2 is missing" in result.reason


def test_a_delete_in_the_middle_is_found(session: Session, orgs: tuple[int, int]) -> None:
    alpha, beta = orgs
    tamper(session, "DELETE FROM audit_events WHERE org_id = :o AND seq = 4", o=alpha)
    result = audit.verify(session, alpha)
    assert (result.broken_seq, result.count) == (4, 3)
    assert "was deleted" in result.reason
    assert_intact(session, beta, 4)


@pytest.mark.parametrize("kept", [5, 3, 0])
def test_a_deleted_tail_is_found_through_the_head(
    session: Session, orgs: tuple[int, int], kept: int
) -> None:
    alpha, beta = orgs
    tamper(session, "DELETE FROM audit_events WHERE org_id = :o AND seq > :k", o=alpha, k=kept)
    result = audit.verify(session, alpha)
    assert (result.broken_seq, result.count) == (kept + 1, kept)
    assert "deleted from the end" in result.reason
    assert_intact(session, beta, 4)


def test_a_forged_append_with_a_plausible_seq_and_hash_is_found(
    session: Session, orgs: tuple[int, int]
) -> None:
    """The forger knows the algorithm and links the row perfectly, but not the head."""
    alpha, beta = orgs
    last = chain(session, alpha)[-1]
    forged = {"seq": 7, "actor_id": None, "action": "test.forged", "target_type": None,
              "target_id": None, "data": {}, "ip_prefix": None, "request_id": None,
              "created_at": datetime.now(UTC)}  # fmt: skip
    digest = audit.link_hash(last.hash, forged, alpha)
    tamper(
        session,
        "INSERT INTO audit_events (org_id, seq, action, data, created_at, prev_hash, hash) "
        "VALUES (:o, 7, 'test.forged', '{}', :at, :prev, :hash)",
        o=alpha, at=forged["created_at"], prev=last.hash, hash=digest,
    )  # fmt: skip
    result = audit.verify(session, alpha)
    assert (result.broken_seq, result.count) == (7, 7)
    assert "inserted" in result.reason
    assert_intact(session, beta, 4)


def test_a_rewritten_last_event_is_found_through_the_head(
    session: Session, orgs: tuple[int, int]
) -> None:
    """Changing the last event and recomputing its own hash still disagrees with the head."""
    alpha, _beta = orgs
    session.rollback()
    row = session.execute(
        text("SELECT * FROM audit_events WHERE org_id = :o AND seq = 6"), {"o": alpha}
    ).mappings().one()  # fmt: skip
    fields = {**row, "data": {"i": 1000}}
    tamper(session, "UPDATE audit_events SET data = '{\"i\": 1000}', hash = :h "
           "WHERE org_id = :o AND seq = 6", h=audit.link_hash(row["prev_hash"], fields, alpha),
           o=alpha)  # fmt: skip
    result = audit.verify(session, alpha)
    assert (result.broken_seq, result.count) == (6, 6)
    assert "rewritten" in result.reason


def test_a_deleted_head_is_found(session: Session, orgs: tuple[int, int]) -> None:
    alpha, beta = orgs
    tamper(session, "DELETE FROM audit_heads WHERE chain_id = :o", o=alpha)
    result = audit.verify(session, alpha)
    assert result.broken_seq == 1
    assert "head record is missing" in result.reason
    assert_intact(session, beta, 4)


def test_a_duplicated_seq_is_refused_and_found(session: Session, orgs: tuple[int, int]) -> None:
    alpha, beta = orgs
    copy = ("INSERT INTO audit_events (org_id, seq, action, data, created_at, prev_hash, hash) "
            "SELECT org_id, seq, 'test.copy', data, created_at, prev_hash, hash "
            "FROM audit_events WHERE org_id = :o AND seq = 2")  # fmt: skip
    with pytest.raises(IntegrityError):  # the unique (org_id, seq) index refuses it
        tamper(session, copy, o=alpha)
    session.rollback()
    # Someone who can drop the index too: inside one transaction, rolled back afterwards.
    session.execute(text("DROP INDEX ux_audit_events_org_seq"))
    session.execute(text(copy), {"o": alpha})
    result = audit.verify(session, alpha)
    session.rollback()
    assert (result.broken_seq, result.count) == (2, 2)
    assert "appears twice" in result.reason
    assert_intact(session, alpha, 6)  # the index and the chain are back
    assert_intact(session, beta, 4)


def test_the_site_chain_is_its_own_chain(session: Session, orgs: tuple[int, int]) -> None:
    alpha, _beta = orgs
    append(session, None, 4, action="test.site")
    assert [r.seq for r in chain(session, None)] == [1, 2, 3, 4]
    assert_intact(session, None, 4)
    assert_intact(session, alpha, 6)
    tamper(session, "UPDATE site_audit_events SET actor_id = 7 WHERE seq = 3")
    assert audit.verify(session, None).broken_seq == 3
    assert_intact(session, alpha, 6)
    tamper(session, "DELETE FROM site_audit_events WHERE seq = 4")
    assert audit.verify(session, None).broken_seq == 3  # still the first broken link


def test_a_consistent_rewrite_of_the_whole_chain_is_caught_only_by_a_saved_head(
    session: Session, orgs: tuple[int, int]
) -> None:
    """What verify cannot see: rows and head rewritten with recomputed hashes. A head hash
    saved earlier (verify's output, an export) no longer matches."""
    alpha, _beta = orgs
    saved = audit.verify(session, alpha).head_hash
    rows = chain(session, alpha)
    session.rollback()
    full = session.execute(
        text("SELECT * FROM audit_events WHERE org_id = :o ORDER BY seq"), {"o": alpha}
    ).mappings().all()  # fmt: skip
    prev = GENESIS_HASH
    for row in full:
        fields = {**row, "data": {"i": -1}}
        digest = audit.link_hash(prev, fields, alpha)
        session.execute(
            text("UPDATE audit_events SET data = '{\"i\": -1}', prev_hash = :p, hash = :h "
                 "WHERE id = :id"), {"p": prev, "h": digest, "id": row["id"]},
        )  # fmt: skip
        prev = digest
    session.execute(text("UPDATE audit_heads SET hash = :h WHERE chain_id = :o"),
                    {"h": prev, "o": alpha})  # fmt: skip
    session.commit()
    result = audit.verify(session, alpha)
    assert result.ok and result.count == len(rows)
    assert result.head_hash != saved


def test_record_refuses_bad_actions_and_keeps_data_that_jsonb_would_alter_stable(
    session: Session, orgs: tuple[int, int]
) -> None:
    alpha, _beta = orgs
    for bad in ("Ticket.Created", "ticket", "ticket created", "ticket.", ""):
        with pytest.raises(ValueError, match="dotted"):
            audit.record(session, alpha, bad)
    data = {"name\x00": "a\x00b", "list": ["\x00"], "big": 1e20, "small": 0.1}
    audit.record(session, alpha, "test.nul", data=data)
    session.commit()
    stored = {"name": "ab", "list": [""], "big": "1e+20", "small": "0.1"}
    assert chain(session, alpha)[-1].data == stored
    assert_intact(session, alpha, 7)


@pytest.mark.parametrize(
    ("address", "prefix"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
        ("not-an-ip", None),
        (None, None),
        ("", None),
    ],
)
def test_only_the_client_network_is_kept(address: str | None, prefix: str | None) -> None:
    assert address_prefix(address) == prefix
