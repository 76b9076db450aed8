"""Encoded batches, made in this process or in a forked worker while this one writes."""

from __future__ import annotations

import datetime as dt
import gc
import multiprocessing
import os
import queue
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from plusjeklas_tui.crypto import Keyring
from plusjeklas_tui.errors import PlusjeklasError
from plusjeklas_tui.services.demo import rows
from plusjeklas_tui.services.demo.generator import iter_demo_batches

PARALLEL_FROM_SCHOOLS = 5_000


@dataclass(frozen=True)
class Plan:
    """Everything that decides the encoded rows (handed to the worker process as it is)."""

    schools: int
    seed: int
    today: dt.date
    batch_schools: int | None
    keyring: Keyring
    ids: rows.Ids
    dialect_name: str
    now: dt.datetime


EncodedBatch = tuple[int, rows.Rows]
"""(schools done after this batch, rows per table)."""


def encoded_batches(plan: Plan) -> Iterator[EncodedBatch]:
    """The rows of every batch, in this process."""
    codec = rows.Codec(plan.dialect_name)
    batches = iter_demo_batches(
        plan.schools, plan.seed, today=plan.today, batch_schools=plan.batch_schools
    )
    for batch in batches:
        # Looked up on the module at each call, so a test can make one batch fail.
        encoded = rows.encode_batch(batch, plan.keyring, plan.ids, codec, plan.now)
        yield batch.first_school + len(batch.schools), encoded


class _WorkerFailed(NamedTuple):
    traceback: str


def _worker(plan: Plan, channel: Any) -> None:
    """The generator process: every encoded batch onto *channel*, then ``None``."""
    gc.disable()
    try:
        for item in encoded_batches(plan):
            channel.put(item)
        channel.put(None)
    except BaseException:
        channel.put(_WorkerFailed(traceback.format_exc()))


def encoded_batches_in_worker(plan: Plan) -> Iterator[EncodedBatch]:
    """:func:`encoded_batches`, computed in a forked process while this one writes.

    Generating and encrypting take about as long as SQLite's inserts, so on two cores the
    pipeline nearly halves the wall time. Fork, not spawn: the child inherits the loaded
    modules and the keyring without pickling a key; it never touches the parent's database
    connections, and multiprocessing ends it with ``os._exit``, so it closes none of them.
    """
    context = multiprocessing.get_context("fork")
    channel = context.Queue(maxsize=3)
    process = context.Process(target=_worker, args=(plan, channel), daemon=True)
    process.start()
    try:
        while True:
            try:
                item = channel.get(timeout=1.0)
            except queue.Empty:
                if not process.is_alive():
                    raise PlusjeklasError(
                        f"the demo generator process stopped unexpectedly "
                        f"(exit code {process.exitcode}); nothing was written"
                    ) from None
                continue
            if item is None:
                return
            if isinstance(item, _WorkerFailed):
                raise PlusjeklasError(
                    "the demo generator process failed; nothing was written\n" + item.traceback
                )
            yield item
    finally:
        if process.is_alive():
            process.terminate()
        process.join()
        channel.close()


def use_worker(parallel: bool | None, schools: int) -> bool:
    if parallel is not None:
        return parallel
    can_fork = sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()
    return can_fork and (os.cpu_count() or 1) > 1 and schools >= PARALLEL_FROM_SCHOOLS
