"""run --workers: the supervisor of producer processes on one machine."""
