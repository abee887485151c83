"""Benchmarks of issue 5: every figure is measured beside its baseline in the same run.

Run everything with ``make bench``; see ``bench/__main__.py``. Nothing here is a test: the
numbers go to ``docs/benchmarks.md`` and ``docs/benchmarks.png``.
"""
