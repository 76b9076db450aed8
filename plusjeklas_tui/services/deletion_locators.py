"""The locator of a deletion task: only what one provider needs to find the subject.

The erasure service (``services/erasure.py``) writes it into ``DeletionTask.locator``
(encrypted by the column type, context :data:`LOCATOR_CONTEXT`) in the same transaction as the
local erasure; the worker (``services/deletion_worker.py``) reads it back into a
:class:`Subject` and destroys it when the task is done.
"""

from __future__ import annotations

import json

from plusjeklas_tui.providers import Subject

LOCATOR_CONTEXT = "deletion_task.locator"


def make_locator(*, external_id: str | None = None, email: str | None = None) -> str:
    """The ``DeletionTask.locator`` value: only what one provider needs to find the subject.

    The erasure service writes it (encrypted by the column type); the worker reads it back
    into a :class:`Subject` and destroys it when the task is done.
    """
    data = {key: value for key, value in (("external_id", external_id), ("email", email)) if value}
    return json.dumps(data, sort_keys=True)


def subject_from_locator(subject_type: str, subject_id: int, locator: str | None) -> Subject:
    """The :class:`Subject` a task is about. Raises ValueError for an unreadable locator."""
    data = json.loads(locator) if locator else {}
    if not isinstance(data, dict):
        raise ValueError("the locator is not a JSON object")
    external_id, email = data.get("external_id"), data.get("email")
    if not (external_id is None or isinstance(external_id, str)) or not (
        email is None or isinstance(email, str)
    ):
        raise ValueError("the locator's external_id and email must be text")
    return Subject(
        subject_type=subject_type,  # type: ignore[arg-type]
        local_id=subject_id,
        external_id=external_id,
        email=email,
    )
