"""The existing-customer basis for the newsletter (Telecommunicatiewet art. 11.7(3)).

Without consent, a school's contact may receive the newsletter only when their details were
obtained with a sale, the chance to object was offered right then, and they have not objected
since. A :class:`CustomerBasis` row records that collection and its evidence; it is append-only.
Whether the basis still holds is derived every time (see
:mod:`plusjeklas_tui.services.newsletter_basis`): the school must be paying, and any newsletter
withdrawal in the person's consent history is an objection that ends it for good.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, ForeignKey, Integer
from sqlmodel import Field, SQLModel

from plusjeklas_tui.models.core import _created, _encrypted
from plusjeklas_tui.sqltypes import UTCDateTime

__all__ = ["CustomerBasis"]


class CustomerBasis(SQLModel, table=True):
    """Contact details collected with a sale, with the objection offered at collection."""

    __tablename__ = "newsletter_customer_basis"

    id: int | None = Field(default=None, primary_key=True)
    administrator_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("administrator.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    organisation_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("organisation.id", ondelete="CASCADE"), nullable=False
        ),
        description="the customer whose sale the details came with",
    )
    collected_at: dt.datetime = Field(
        sa_column=Column(UTCDateTime(), nullable=False),
        description="when the details were obtained with the sale (UTC)",
    )
    objection_text_version: str = Field(
        max_length=100, description="version of the text that offered the objection"
    )
    evidence: str = Field(
        sa_column=_encrypted("newsletter_customer_basis.evidence", nullable=False),
        description="where the proof is (order form, contract): staff's words, so encrypted",
    )
    recorded_by: str = Field(max_length=64)
    recorded_at: dt.datetime | None = Field(default=None, sa_column=_created())
