"""Performance benchmarks: ``python -m benchmarks [--quick] [--only NAME ...]``.

Run from the repository root (``PYTHONPATH=.`` when the project is not installed). Every
benchmark prints one JSON object on its own line on stdout; progress goes to stderr::

    {"name": "list_100_by_name_substring", "value": 2.1, "unit": "ms",
     "target": 20.0, "floor": 1.6, "ratio": 0.105, "ok": true}

``name``
    Stable identifier of the benchmark (the same in quick mode).
``value``
    The measured figure, in ``unit`` (``s`` or ``ms``); a median where the benchmark repeats.
``target``
    The absolute limit from the issue that set it: ``value`` must not exceed it. ``null`` when
    the benchmark only has a relative limit.
``floor``
    The same work done the cheapest way we know (for example the same SQL through plain
    ``sqlite3``, without the application around it), measured in the same run on the same
    data; ``null`` when there is none. A benchmark with a floor also has a floor factor ``k``
    (documented with it; 2 for the list query): ``value`` must not exceed ``k * floor``.
``ratio``
    ``value / target``, or ``value / floor`` when there is no target. Below 1 is within target.
``ok``
    ``true`` when ``value <= target`` (if there is a target) and ``value <= k * floor`` (if
    there is a floor). A benchmark that fails with an error prints ``value: null``, ``ok:
    false`` and its traceback on stderr.

``--quick`` runs every benchmark at a tenth of its size, for CI: data sets are ten times
smaller, and targets that scale with the size (total times) are ten times smaller too;
per-operation targets stay as they are. ``--only NAME`` (repeatable) runs just those.

The exit code is 0 when every benchmark is ok and 1 otherwise, after all lines are printed.

Benchmarks live in the modules of this package (each registers its functions with
:func:`benchmarks.harness.benchmark`); a later issue adds a module and is picked up
automatically. They use temporary directories and SQLite only.
"""
