"""The tables, one module per area; everything is importable from ``plusjeklas_tui.models``.

``core`` holds what the privacy statement names (schools, administrators, subscriptions,
consent), the audit log, provider state and the retention/erasure tables. The privacy-office
areas (data-subject requests, breaches, feedback, promise audits) each keep their tables in a
module of their own. Importing this package registers every table on :data:`metadata`, which
Alembic and the tests use.
"""

from plusjeklas_tui.models.breaches import *  # noqa: F403
from plusjeklas_tui.models.core import *  # noqa: F403
from plusjeklas_tui.models.core import index_value, metadata  # noqa: F401
from plusjeklas_tui.models.feedback import *  # noqa: F403
from plusjeklas_tui.models.newsletter import *  # noqa: F403
from plusjeklas_tui.models.promises import *  # noqa: F403
from plusjeklas_tui.models.requests import *  # noqa: F403
