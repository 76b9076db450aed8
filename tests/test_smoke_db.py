"""The fixtures work and a record round-trips through encryption on each engine."""

from __future__ import annotations

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
