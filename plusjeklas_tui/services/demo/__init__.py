"""Demo data: a believable database of Dutch primary schools, fast and reproducible.

Two layers, so each can be tested on its own:

* :func:`iter_demo_batches` is pure: from ``(schools, seed, today)`` it yields plain records
  (schools, administrators, subscriptions, consent events). The same arguments give the same
  records every time; dates are relative to ``today`` so retention clocks look realistic.
* :func:`generate` writes them into a migrated, empty database in one transaction (all or
  nothing), a batch of a few thousand schools per driver-level ``executemany``, with personal
  fields encrypted by the keyring's key and blind indexes computed here. Ids are assigned
  here too, so rows can refer to each other without a round trip; on PostgreSQL the id
  sequences are moved past them afterwards.

:func:`prepare_demo` is what ``plusjeklas demo`` runs: a demo folder with its own config and
key file, migrated, generated once and reused after.

How 100,000 schools (about 750,000 rows, a million encrypted values) fit in the 30 seconds
the issue allows on two slow cores, measured: ORM objects and even Core ``insert()`` spend
most of their time in per-row parameter processing, so rows are plain tuples in column order
(:data:`INSERT_COLUMNS`); Faker is called only to fill pools of streets, cities and names,
which a seeded :class:`random.Random` combines a column at a time; the garbage collector is
paused; and generation plus encryption run in a forked worker while this process writes.
Every value is built in its normal form (postcode ``1234 AB``, E.164 phones, compact IBAN),
so it passes the validation module unchanged; the tests check that.

The modules, each with one job (a module only imports those above it):

* :mod:`.records` -- the plain record types;
* :mod:`.words` -- word lists, and the Faker pools of streets, cities and names;
* :mod:`.values` -- single values that must be valid: BRINs, IBANs, phone number starts;
* :mod:`.generator` -- the pure, seeded generator of records;
* :mod:`.rows` -- records to table rows: ids, driver formats, encryption, blind indexes;
* :mod:`.pipeline` -- encoded batches, in this process or a forked worker;
* :mod:`.privacy_office` -- a few requests, breaches and feedback marks, once per demo;
* :mod:`.writer` -- :func:`generate`: one transaction into an empty database;
* :mod:`.installation` -- :func:`prepare_demo`: the demo folder, its config and key.

This package re-exports what the rest of the application uses, so
``from plusjeklas_tui.services import demo`` and ``demo.generate(...)`` keep working.
"""

from __future__ import annotations

from plusjeklas_tui.services.demo.generator import (
    DEFAULT_SEED,
    MAX_BATCH_SCHOOLS,
    batch_size,
    iter_demo_batches,
)
from plusjeklas_tui.services.demo.installation import (
    CONFIG_MARKER,
    CONFIG_NAME,
    DEMO_DB_NAME,
    KEY_NAME,
    DemoSetup,
    default_database_path,
    demo_config_text,
    prepare_demo,
)
from plusjeklas_tui.services.demo.pipeline import PARALLEL_FROM_SCHOOLS, EncodedBatch
from plusjeklas_tui.services.demo.records import (
    DemoAdministrator,
    DemoBatch,
    DemoConsent,
    DemoCounts,
    DemoSchool,
    DemoSubscription,
)
from plusjeklas_tui.services.demo.rows import INSERT_COLUMNS
from plusjeklas_tui.services.demo.values import (
    BRIN_BASE_CODES,
    BRIN_CAPACITY,
    demo_brins,
    nl_iban,
)
from plusjeklas_tui.services.demo.words import DEMO_EDITOR, DEMO_VIEWER
from plusjeklas_tui.services.demo.writer import (
    BULK_CACHE_KIB,
    DEFAULT_CACHE_KIB,
    DEFAULT_SCHOOLS,
    ProgressCallback,
    count_rows,
    count_schools,
    generate,
)

__all__ = [
    "BRIN_BASE_CODES",
    "BRIN_CAPACITY",
    "BULK_CACHE_KIB",
    "CONFIG_MARKER",
    "CONFIG_NAME",
    "DEFAULT_CACHE_KIB",
    "DEFAULT_SCHOOLS",
    "DEFAULT_SEED",
    "DEMO_DB_NAME",
    "DEMO_EDITOR",
    "DEMO_VIEWER",
    "INSERT_COLUMNS",
    "KEY_NAME",
    "MAX_BATCH_SCHOOLS",
    "PARALLEL_FROM_SCHOOLS",
    "DemoAdministrator",
    "DemoBatch",
    "DemoConsent",
    "DemoCounts",
    "DemoSchool",
    "DemoSetup",
    "DemoSubscription",
    "EncodedBatch",
    "ProgressCallback",
    "batch_size",
    "count_rows",
    "count_schools",
    "default_database_path",
    "demo_brins",
    "demo_config_text",
    "generate",
    "iter_demo_batches",
    "nl_iban",
    "prepare_demo",
]
