"""Steering a run while it goes (``run --control``): the state and its change log, the HTTP
routes on the metrics server, the live page, the ``ctl`` client and the control document."""
