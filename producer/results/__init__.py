"""One run across processes, pods and tasks: where every shard leaves its summary and spool
(``--results-url``, store.py), and how ``merge`` turns them into the run's one summary
(combine.py)."""
