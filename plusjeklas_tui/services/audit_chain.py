"""The audit log's tamper evidence: a keyed MAC chain, sealed as events are written.

Every audit event carries a seal::

    seq         its place in the chain: 1, 2, 3 ... without gaps
    mac_key_id  the field key whose audit MAC key sealed it
    prev_mac    the mac of event seq - 1 (``GENESIS`` for seq 1)
    mac         HMAC-SHA256(audit MAC key, canonical(seq, occurred_at, actor, action, entity,
                entity_id, detail, prev_mac))

Why each part:

* The MAC key is derived from the field key with its own HKDF label
  (:attr:`~plusjeklas_tui.crypto.FieldKey.audit_mac_key`): whoever can write the database but
  does not hold the key file cannot make a valid seal, and the encryption key is never used
  for anything else.
* ``seq`` is inside the MAC, so an event cannot be moved without breaking its own seal, and a
  missing ``seq`` is a deleted event. ``prev_mac`` is stored (not only hashed in) so each
  event can be checked on its own *and* against its neighbour: an event whose own seal holds
  but whose predecessor is missing was not changed, its neighbour was deleted; an event whose
  seal holds only at another ``seq`` was moved there. That is what lets ``audit verify`` say
  which kind of tampering it found instead of "something after #57 is wrong".
* Writers are serialised by the one-row ``audit_chain_head`` table: sealing starts with
  ``UPDATE audit_chain_head SET seq = seq + 1`` (SQLite's write lock, a PostgreSQL row lock),
  then reads the previous mac from that same row, so two writers never chain onto the same
  event. Sealing happens when the session flushes the new events (a ``before_flush`` hook),
  not when :func:`~plusjeklas_tui.services.audit.record` is called: the lock is taken as late
  as possible in the caller's transaction, after its other writes, and held until it commits,
  which keeps it short and keeps PostgreSQL lock order (other rows, then the head) the same in
  every transaction. The event is committed with the change it describes, or not at all.
* Key rotation retires field keys. Each audit MAC key used is kept in ``audit_mac_key``,
  encrypted under the field key like any personal value, so ``keys rotate`` re-encrypts it
  with everything else and events sealed under a retired key stay verifiable. Old events are
  never re-sealed (that would launder any change made to them).
* Events written before the chain existed have no seal (a migration cannot read the key
  file). Migration 0006 records the newest of them (``legacy_max_id``); the first sealing
  after the upgrade seals them in id order as ``#1..#N`` before the new event. Until then
  ``verify`` counts them as waiting; an unsealed event written after the chain started is
  reported as inserted.

What it cannot see: someone who holds the key file can forge anything, and someone who owns
the database can cut events off the end *and* move the head back (the head's trigger refuses
that, but triggers can be dropped). Keep the ``--json`` output of ``audit verify`` (it names
the head) somewhere else to anchor the end.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Text,
    bindparam,
    column,
    event,
    insert,
    select,
    table,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from plusjeklas_tui.crypto import FieldKey, Keyring
from plusjeklas_tui.errors import DatabaseNotReady, KeyProblem
from plusjeklas_tui.models import AuditChainHead, AuditEvent
from plusjeklas_tui.sqltypes import keyring_of, utcnow
from plusjeklas_tui.staff import Permission, StaffMember

GENESIS = "0" * 64
"""``prev_mac`` of event #1."""
FORMAT = "audit-v1"
MAC_KEY_CONTEXT = "audit_mac_key.secret"
STREAM_BATCH = 5000
RECENT_MACS = 4096
"""Macs of the newest intact events kept while streaming, to place moved events cheaply."""

_EVENTS = AuditEvent.__table__
_HEAD = AuditChainHead.__table__
# Raw view of the key store: the token as stored, decrypted here with the keyring passed in.
_MAC_KEYS = table("audit_mac_key", column("key_id", Text), column("secret", Text))
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# --- the seal ---------------------------------------------------------------------------------


def canonical(
    seq: int,
    occurred_at: dt.datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: int | None,
    detail: str,
    prev_mac: str,
) -> bytes:
    """The bytes an event's MAC covers: a JSON array, so no field can bleed into the next."""
    when = occurred_at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return _encode([FORMAT, seq, when, actor, action, entity, entity_id, detail, prev_mac]).encode()


def compute_mac(key: bytes, seq: int, fields: Sequence[Any], prev_mac: str) -> str:
    """HMAC-SHA256 of :func:`canonical`; *fields* are (occurred_at, actor, action, entity,
    entity_id, detail)."""
    return hmac.digest(key, canonical(seq, *fields, prev_mac), "sha256").hex()


def _letters(secret: bytes) -> str:
    """Hex written with the letters a-p: a stored key never looks like a number (a BSN scan)."""
    return secret.hex().translate(_TO_LETTERS)


def _from_letters(text: str) -> bytes:
    return bytes.fromhex(text.translate(_FROM_LETTERS))


_TO_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")
_FROM_LETTERS = str.maketrans("abcdefghijklmnop", "0123456789abcdef")


# --- writing ----------------------------------------------------------------------------------


@event.listens_for(Session, "before_flush")
def _seal_new_events(session: Session, _context: Any, _instances: Any) -> None:
    """Seal the audit events this flush inserts, in the order they were added."""
    pending = [obj for obj in session.new if isinstance(obj, AuditEvent) and obj.mac is None]
    if pending:
        pending.sort(key=lambda obj: sa_inspect(obj).insert_order)
        seal_events(session.connection(), pending)


def seal_events(conn: Connection, events: Sequence[AuditEvent]) -> None:
    """Give *events* (about to be inserted on *conn*) the next places in the chain.

    Takes the writers' lock (the head row) for the rest of *conn*'s transaction.
    """
    keyring = keyring_of(conn.dialect)
    key = keyring.primary
    head = conn.execute(
        update(_HEAD)
        .where(_HEAD.c.id == 1)
        .values(seq=_HEAD.c.seq + 1)
        .returning(_HEAD.c.seq, _HEAD.c.mac, _HEAD.c.mac_key_id, _HEAD.c.legacy_max_id)
    ).first()
    if head is None:
        raise DatabaseNotReady(
            "the audit log has no chain head (table audit_chain_head is empty); "
            "run `plusjeklas db upgrade`"
        )
    seq, prev = head.seq - 1, head.mac or GENESIS
    if seq == 0 and head.legacy_max_id is not None:
        seq, prev = _seal_legacy(conn, key, head.legacy_max_id)
    if head.mac_key_id != key.key_id:
        _remember_key(conn, keyring, key)
    for audit_event in events:
        if audit_event.occurred_at is None:
            audit_event.occurred_at = utcnow()
        if audit_event.detail is None:
            audit_event.detail = "{}"
        seq += 1
        fields = (
            audit_event.occurred_at,
            audit_event.actor,
            audit_event.action,
            audit_event.entity,
            audit_event.entity_id,
            audit_event.detail,
        )
        audit_event.seq = seq
        audit_event.mac_key_id = key.key_id
        audit_event.prev_mac = prev
        audit_event.mac = prev = compute_mac(key.audit_mac_key, seq, fields, prev)
    conn.execute(
        update(_HEAD).where(_HEAD.c.id == 1).values(seq=seq, mac=prev, mac_key_id=key.key_id)
    )


def _seal_legacy(conn: Connection, key: FieldKey, legacy_max_id: int) -> tuple[int, str]:
    """Seal the events from before the chain as #1..#N (id order); returns (N, mac of #N).

    Runs once, under the writers' lock, on the first sealing after migration 0006. The
    append-only trigger lets exactly this update through (seal columns from NULL to set).
    """
    rows = conn.execute(
        select(_EVENTS.c.id, *_content_columns())
        .where(_EVENTS.c.seq.is_(None), _EVENTS.c.id <= legacy_max_id)
        .order_by(_EVENTS.c.id)
    ).all()
    seq, prev = 0, GENESIS
    params = []
    for row in rows:
        seq += 1
        mac = compute_mac(key.audit_mac_key, seq, row[1:], prev)
        params.append({"row_id": row.id, "s": seq, "k": key.key_id, "p": prev, "m": mac})
        prev = mac
    if params:
        conn.execute(
            update(_EVENTS)
            .where(_EVENTS.c.id == bindparam("row_id"))
            .values(
                seq=bindparam("s"),
                mac_key_id=bindparam("k"),
                prev_mac=bindparam("p"),
                mac=bindparam("m"),
            ),
            params,
        )
    return seq, prev


def _remember_key(conn: Connection, keyring: Keyring, key: FieldKey) -> None:
    """Store *key*'s audit MAC key (encrypted) unless it is stored already."""
    known = conn.execute(select(_MAC_KEYS.c.key_id).where(_MAC_KEYS.c.key_id == key.key_id)).first()
    if known is None:
        plain = f"{key.key_id}:{_letters(key.audit_mac_key)}"
        conn.execute(
            insert(_MAC_KEYS).values(
                key_id=key.key_id, secret=keyring.encrypt(plain, MAC_KEY_CONTEXT)
            )
        )


def _content_columns() -> list[Any]:
    c = _EVENTS.c
    return [c.occurred_at, c.actor, c.action, c.entity, c.entity_id, c.detail]


# --- verifying --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainProblem:
    """One finding. ``kind``: changed, deleted, inserted, reordered, forked or unverifiable.

    ``seqs`` are places in the chain (``#57``), ``event_ids`` the rows' ids; messages hold
    nothing else (no personal data).
    """

    kind: str
    message: str
    seqs: tuple[int, ...] = ()
    event_ids: tuple[int, ...] = ()

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "seqs": list(self.seqs),
            "event_ids": list(self.event_ids),
        }


@dataclass
class ChainReport:
    """What :func:`verify_chain` found; ``ok`` when no problem was found."""

    checked: int = 0
    """Sealed events read and checked."""
    first_seq: int | None = None
    last_seq: int | None = None
    head_seq: int = 0
    head_mac: str | None = None
    waiting: int = 0
    """Events from before the chain existed, sealed by the next audit event (not a problem)."""
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line for people: intact, or how many problems."""
        if self.ok:
            if self.checked:
                text = (
                    f"audit log intact: {self.checked} events, chain from "
                    f"#{self.first_seq} to #{self.last_seq}"
                )
            else:
                text = "audit log intact: no sealed events yet"
            if self.waiting:
                text += (
                    f"; {self.waiting} events from before the chain started are sealed by "
                    "the next audit event"
                )
            return text
        return (
            f"audit log NOT intact: {len(self.problems)} problem(s) in {self.checked} sealed events"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head": {"seq": self.head_seq, "mac": self.head_mac},
            "waiting_to_be_sealed": self.waiting,
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass(slots=True)
class _Row:
    id: int
    seq: int
    fields: tuple[Any, ...]
    key_id: str | None
    prev_mac: str | None
    mac: str | None
    prev_id: int | None = None
    """Id of the event at the place before (for the id-order test)."""
    next_id: int | None = None
    true_seq: int | None = None
    beyond_head: bool = False


def mac_keys(conn: Connection, keyring: Keyring) -> tuple[dict[str, bytes], set[str]]:
    """Key id -> audit MAC key (the loaded keys, plus retired ones from ``audit_mac_key``),
    and the ids of every key that ever sealed an event (readable or not)."""
    keys = {k.key_id: k.audit_mac_key for k in keyring.keys}
    used: set[str] = set()
    for key_id, token in conn.execute(select(_MAC_KEYS.c.key_id, _MAC_KEYS.c.secret)):
        used.add(key_id)
        if key_id in keys:
            continue
        try:
            stored_id, _, letters = keyring.decrypt(token, MAC_KEY_CONTEXT).partition(":")
            if stored_id == key_id:  # a token copied to another key's row is ignored
                keys[key_id] = _from_letters(letters)
        except (KeyProblem, ValueError):
            continue  # wrapped under a key not loaded: its events are reported unverifiable
    return keys, used


def verify_chain(
    session_or_connection: Session | Connection | Engine, keyring: Keyring
) -> ChainReport:
    """Check every audit event's seal and place; classify what is wrong.

    Streams the events in ``seq`` order (server-side cursor on PostgreSQL), keeping only the
    suspicious ones and a window of recent macs in memory. A Session or Connection is read
    inside its own transaction; with an Engine a connection is opened and closed.
    """
    if isinstance(session_or_connection, Engine):
        with session_or_connection.connect() as conn:
            return _Verifier(conn, keyring).run()
    if isinstance(session_or_connection, Session):
        return _Verifier(session_or_connection.connection(), keyring).run()
    return _Verifier(session_or_connection, keyring).run()


def verify(engine: Engine, keyring: Keyring, staff: StaffMember) -> ChainReport:
    """``plusjeklas audit verify``: any staff member may check the log."""
    staff.require(Permission.READ, "verify the audit log")
    return verify_chain(engine, keyring)


class _Verifier:
    """One pass over the sealed events, then placing the suspicious ones."""

    def __init__(self, conn: Connection, keyring: Keyring) -> None:
        self.conn = conn
        self.keys, self.used_keys = mac_keys(conn, keyring)
        self.report = ChainReport()
        self.gaps: list[tuple[int, int]] = []
        self.suspects: list[_Row] = []
        self.contested: dict[int, list[_Row]] = {}
        """Place -> its events when none of them has an intact seal."""
        self.occupant: dict[int, int] = {}
        """Place -> id of its intact event, for the places suspects claim or move to."""
        self.recent: dict[str, int] = {}
        self.last_intact: tuple[int, str, int] | None = None  # seq, mac, id

    # -- the pass ------------------------------------------------------------------------------

    def run(self) -> ChainReport:
        head = self.conn.execute(
            select(_HEAD.c.seq, _HEAD.c.mac, _HEAD.c.legacy_max_id).where(_HEAD.c.id == 1)
        ).first()
        if head is None:
            raise DatabaseNotReady(
                "the audit log has no chain head (table audit_chain_head is empty); "
                "run `plusjeklas db upgrade`"
            )
        report = self.report
        report.head_seq, report.head_mac = head.seq, head.mac
        expect, prev_id = 1, None
        waiting_for_next: list[_Row] = []
        for group in self._groups():
            seq = group[0].seq
            for row in waiting_for_next:
                row.next_id = group[0].id
            if seq > expect and expect <= head.seq:
                self.gaps.append((expect, min(seq, head.seq + 1) - 1))
            prev_id = self._check_group(group, prev_id, beyond_head=seq > head.seq)
            waiting_for_next = self.contested.get(seq, [])
            if report.first_seq is None:
                report.first_seq = seq
            report.last_seq = seq
            expect = seq + 1
        if expect <= head.seq:
            self.gaps.append((expect, head.seq))
        self._place_suspects()
        self._unsealed(head.seq, head.legacy_max_id)
        self._check_head(head.seq, head.mac)
        report.problems.sort(key=lambda p: (p.seqs[0] if p.seqs else 1 << 62, p.event_ids))
        return report

    def _groups(self) -> Iterator[list[_Row]]:
        """Sealed events grouped by ``seq`` (normally one per group), in order."""
        c = _EVENTS.c
        query = (
            select(c.id, c.seq, *_content_columns(), c.mac_key_id, c.prev_mac, c.mac)
            .where(c.seq.is_not(None))
            .order_by(c.seq, c.id)
        )
        result = self.conn.execution_options(yield_per=STREAM_BATCH).execute(query)
        group: list[_Row] = []
        for r in result:
            row = _Row(r[0], r[1], tuple(r[2:8]), r[8], r[9], r[10])
            if group and row.seq != group[0].seq:
                yield group
                group = []
            group.append(row)
        if group:
            yield group

    def _intact(self, row: _Row, seq: int) -> bool | None:
        """Whether *row*'s seal holds at place *seq*; None when its key is not available.

        A key id that never sealed anything (not in ``audit_mac_key``) is a changed event;
        one that did but cannot be unwrapped with the loaded keys is a configuration problem.
        """
        key = self.keys.get(row.key_id or "")
        if key is None:
            return None if row.key_id in self.used_keys else False
        if row.prev_mac is None:
            return False
        try:
            return compute_mac(key, seq, row.fields, row.prev_mac) == row.mac
        except (TypeError, ValueError, AttributeError):  # a value no writer could have stored
            return False

    def _check_group(self, group: list[_Row], prev_id: int | None, *, beyond_head: bool) -> int:
        """Check the events claiming one place; returns the id that holds the place."""
        report = self.report
        seq = group[0].seq
        intact: list[_Row] = []
        suspects: list[_Row] = []
        for row in group:
            report.checked += 1
            row.prev_id = prev_id
            verdict = self._intact(row, seq)
            if verdict is None:
                report.problems.append(
                    ChainProblem(
                        "unverifiable",
                        f"event #{seq} (id {row.id}) cannot be checked: it was sealed with "
                        f"key {row.key_id}, whose stored copy none of the loaded keys can "
                        "read; is the right key file configured?",
                        (seq,),
                        (row.id,),
                    )
                )
                intact.append(row)  # it holds its place; it just cannot be checked
            elif verdict:
                intact.append(row)
            else:
                suspects.append(row)
        if intact:
            first = intact[0]
            self._follow(first, seq)
            for copy in intact[1:]:
                report.problems.append(
                    ChainProblem(
                        "inserted",
                        f"event id {copy.id} inserted (a second event claiming #{seq}, "
                        f"held by id {first.id})",
                        (seq,),
                        (copy.id,),
                    )
                )
        elif suspects and not beyond_head:
            self.contested[seq] = suspects
        if suspects:
            if intact:
                self.occupant[seq] = intact[0].id
            for row in suspects:
                row.beyond_head = beyond_head
            self.suspects.extend(suspects)
        return intact[0].id if intact else group[0].id

    def _follow(self, row: _Row, seq: int) -> None:
        """Link and order checks of an intact event against the intact one before it."""
        last = self.last_intact
        if row.mac is not None and row.key_id in self.keys:
            if last is not None and last[0] == seq - 1 and row.prev_mac != last[1]:
                self.report.problems.append(
                    ChainProblem(
                        "forked",
                        f"event #{seq} (id {row.id}) does not follow event #{seq - 1}: two "
                        "events were chained onto one predecessor",
                        (seq,),
                        (row.id,),
                    )
                )
            if seq == 1 and row.prev_mac != GENESIS:
                self.report.problems.append(
                    ChainProblem(
                        "forked",
                        f"event #1 (id {row.id}) does not start the chain",
                        (1,),
                        (row.id,),
                    )
                )
        if last is not None and row.id < last[2]:
            self.report.problems.append(
                ChainProblem(
                    "reordered",
                    f"event #{seq} (id {row.id}) reordered: stored before event #{last[0]} "
                    f"(id {last[2]})",
                    (last[0], seq),
                    (last[2], row.id),
                )
            )
        if row.mac is not None:
            self.recent[row.mac] = seq
            if len(self.recent) > 2 * RECENT_MACS:  # trim now and then: O(1) per event
                self.recent = dict(list(self.recent.items())[-RECENT_MACS:])
        self.last_intact = (seq, row.mac or "", row.id)

    # -- placing the suspicious events -----------------------------------------------------------

    def _place_suspects(self) -> None:
        """Find where each event with a broken seal really belongs, then name what happened."""
        if not self.suspects:
            self._report_gaps(set())
            return
        places = self._predecessor_places()
        by_mac = {row.mac: row for row in self.suspects if row.mac}
        progress = True
        while progress:  # moved events chain onto each other: repeat until nothing new
            progress = False
            for row in self.suspects:
                if row.true_seq is not None or row.prev_mac is None:
                    continue
                before = self._place_of(row.prev_mac, places, by_mac)
                if before is None or before + 1 == row.seq:
                    continue
                if self._intact(row, before + 1):
                    row.true_seq = before + 1
                    progress = True
        filled: set[int] = set()
        moved = sorted(
            (r for r in self.suspects if r.true_seq is not None), key=lambda r: r.true_seq or 0
        )
        runs: list[list[_Row]] = []
        for row in moved:
            assert row.true_seq is not None
            if row.true_seq in self.occupant or self._held_by_intact(row.true_seq):
                self._inserted(row, f"a copy of event #{row.true_seq} stored as #{row.seq}")
                continue
            filled.add(row.true_seq)
            last = runs[-1][-1] if runs else None
            if (
                last is not None
                and last.true_seq == row.true_seq - 1
                and last.seq - (last.true_seq or 0) == row.seq - row.true_seq
            ):
                runs[-1].append(row)
            else:
                runs.append([row])
        for run in runs:
            self._reordered(run)
        for row in self.suspects:
            if row.true_seq is not None:
                continue
            if row.beyond_head:
                self._inserted(row, f"after the last event, claiming #{row.seq}")
            elif row.seq in self.occupant:
                self._inserted(row, f"claiming #{row.seq}, held by id {self.occupant[row.seq]}")
        for seq, rows in self.contested.items():
            unplaced = [r for r in rows if r.true_seq is None]
            if seq in filled:
                for row in unplaced:
                    self._inserted(
                        row, f"claiming #{seq}, which event id {self._filler(seq)} belongs at"
                    )
                continue
            if not unplaced:
                continue
            first, *others = unplaced
            if self._in_id_order(first):
                filled.add(seq)
                self.report.problems.append(
                    ChainProblem(
                        "changed", f"event #{seq} changed (id {first.id})", (seq,), (first.id,)
                    )
                )
            else:
                others = unplaced
            for row in others:
                self._inserted(row, f"claiming #{seq}")
        emptied = {seq for seq, rows in self.contested.items() if seq not in filled}
        self._report_gaps(filled, emptied)

    def _filler(self, seq: int) -> int:
        return next(r.id for r in self.suspects if r.true_seq == seq)

    def _held_by_intact(self, seq: int) -> bool:
        """Whether an intact event holds place *seq* (only asked for the few moved events)."""
        if seq in self.contested or any(a <= seq <= b for a, b in self.gaps):
            return False
        return seq <= (self.report.last_seq or 0)

    def _in_id_order(self, row: _Row) -> bool:
        """An event still in its own row (a change) sits between its neighbours' ids."""
        after_prev = row.prev_id is None or row.id > row.prev_id
        before_next = row.next_id is None or row.id < row.next_id
        return after_prev and before_next

    def _predecessor_places(self) -> dict[str, int]:
        """Mac -> place of the intact events the suspects name as their predecessor."""
        places = dict(self.recent)
        suspect_ids = {row.id for row in self.suspects}
        wanted = sorted(
            {r.prev_mac for r in self.suspects if r.prev_mac and r.prev_mac not in places}
        )
        c = _EVENTS.c
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for row_id, seq, mac in self.conn.execute(
                select(c.id, c.seq, c.mac).where(c.mac.in_(chunk))
            ):
                if row_id not in suspect_ids and seq is not None:
                    places[mac] = seq
        return places

    def _place_of(self, mac: str, places: dict[str, int], by_mac: dict[str, _Row]) -> int | None:
        if mac == GENESIS:
            return 0
        if mac in places:
            return places[mac]
        row = by_mac.get(mac)
        return None if row is None else row.true_seq

    def _inserted(self, row: _Row, how: str) -> None:
        self.report.problems.append(
            ChainProblem("inserted", f"event id {row.id} inserted ({how})", (row.seq,), (row.id,))
        )

    def _reordered(self, run: list[_Row]) -> None:
        first, last = run[0], run[-1]
        assert first.true_seq is not None and last.true_seq is not None
        if len(run) == 1:
            message = (
                f"event #{first.true_seq} reordered (id {first.id}, now stored as #{first.seq})"
            )
        else:
            message = (
                f"events #{first.true_seq}-#{last.true_seq} reordered "
                f"(now stored as #{first.seq}-#{last.seq})"
            )
        self.report.problems.append(
            ChainProblem(
                "reordered",
                message,
                tuple(r.true_seq or 0 for r in run),
                tuple(r.id for r in run),
            )
        )

    def _report_gaps(self, filled: set[int], emptied: Iterable[int] = ()) -> None:
        """Places no event holds: deleted events, merged into ranges."""
        missing: list[tuple[int, int]] = []
        for a, b in sorted([*self.gaps, *((s, s) for s in emptied)]):
            for seq in _without(a, b, filled):
                if missing and missing[-1][1] + 1 >= seq[0]:
                    missing[-1] = (missing[-1][0], max(missing[-1][1], seq[1]))
                else:
                    missing.append(seq)
        head = self.report.head_seq
        for a, b in missing:
            what = f"event #{a}" if a == b else f"events #{a}-#{b}"
            tail = " (the end of the log)" if b == head else ""
            self.report.problems.append(
                ChainProblem("deleted", f"{what} deleted{tail}", tuple(range(a, b + 1)))
            )

    # -- the rest ------------------------------------------------------------------------------

    def _unsealed(self, head_seq: int, legacy_max_id: int | None) -> None:
        """Events without a seal: waiting (from before the chain) or inserted behind its back."""
        c = _EVENTS.c
        result = self.conn.execution_options(yield_per=STREAM_BATCH).execute(
            select(c.id).where(c.seq.is_(None)).order_by(c.id)
        )
        for (row_id,) in result:
            if head_seq == 0 and legacy_max_id is not None and row_id <= legacy_max_id:
                self.report.waiting += 1
            else:
                self.report.problems.append(
                    ChainProblem(
                        "inserted",
                        f"event id {row_id} inserted (it carries no seal)",
                        (),
                        (row_id,),
                    )
                )

    def _check_head(self, head_seq: int, head_mac: str | None) -> None:
        last = self.last_intact
        if last is None or last[0] != head_seq or head_mac is None:
            return
        if last[1] != head_mac:
            self.report.problems.append(
                ChainProblem(
                    "changed",
                    f"the chain head does not name event #{head_seq} (id {last[2]}) as the "
                    "newest event",
                    (head_seq,),
                    (last[2],),
                )
            )


def _without(a: int, b: int, holes: set[int]) -> Iterator[tuple[int, int]]:
    """The range a..b cut around the places in *holes*."""
    inside = sorted(s for s in holes if a <= s <= b)
    start = a
    for seq in inside:
        if seq > start:
            yield (start, seq - 1)
        start = seq + 1
    if start <= b:
        yield (start, b)


__all__ = [
    "GENESIS",
    "ChainProblem",
    "ChainReport",
    "canonical",
    "compute_mac",
    "mac_keys",
    "seal_events",
    "verify",
    "verify_chain",
]
