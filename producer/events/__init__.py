"""Event generators: pure functions of a seeded RNG and a timestamp; no I/O, no timing.
The kinds of event are in base, the generators by source in registry."""
