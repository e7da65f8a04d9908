"""Pass/fail checks over a run's own figures (``run --check``, ``merge --check``, a profile's
``checks:``): the expression grammar (expr.py), the figures a check reads and how each metric
is computed from them (figures.py), and the judging, at the end and live over sliding windows
(judge.py)."""
