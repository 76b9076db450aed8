"""The fixtures work and a record round-trips through encryption on each engine."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select, text

from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.models import Administrator, Organisation


def test_personal_fields_roundtrip_encrypted(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as session:
        org = Organisation(
            name="OBS De Klimop",
            street="Kerkstraat 1",
            postcode="1234 AB",
            city="Utrecht",
            brin="05KO",
            phone="+31201234567",
            email="Info@Klimop.nl",
            iban="NL91ABNA0417164300",
        )
        session.add(org)
        session.flush()
        session.add(Administrator(organisation_id=org.id, name="Jan Jansen", email="j@klimop.nl"))
    with ctx.engine.connect() as conn:
        raw = conn.execute(text("SELECT email, iban, email_index FROM organisation")).one()
    assert raw.email.startswith("v1.") and "Klimop" not in raw.email
    assert raw.email_index == ctx.keyring.blind_index("info@klimop.nl")
    with session_scope(ctx.engine) as session:
        org = session.scalars(select(Organisation)).one()
        assert org.iban == "NL91ABNA0417164300"
        admin = session.scalars(select(Administrator)).one()
        assert admin.name == "Jan Jansen"


def test_a_new_sqlite_file_is_not_readable_by_other_accounts(tmp_path: Path) -> None:
    """SQLite would create the file 0644; the data is for the app's group only."""
    import stat

    from plusjeklas_tui import db

    path = tmp_path / "new" / "plusjeklas.db"
    old_umask = os.umask(0o022)
    try:
        engine = db.make_engine(f"sqlite:///{path}")
        db.upgrade(engine)
        with engine.begin() as conn:  # opens the write-ahead log beside it
            conn.exec_driver_sql("CREATE TABLE probe (x)")
            for mode_of in (path, path.with_name(path.name + "-wal")):
                if mode_of.exists():
                    assert stat.S_IMODE(mode_of.stat().st_mode) & 0o007 == 0, mode_of
        engine.dispose()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0660 less the umask's 022
