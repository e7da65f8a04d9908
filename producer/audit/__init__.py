"""End-to-end audit: read what a pipeline delivered and reconcile it with what a run sent.

sources (local folder, S3, OpenSearch) -> findings per stream -> reconcile -> reports
(terminal table, JSON, self-contained HTML). ``soak`` runs a profile, waits for the buffers to
flush, and audits. Every event carries ``run_id`` and ``seq``, so loss and duplication are
counted exactly.
"""
