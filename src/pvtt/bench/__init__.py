"""``pvtt bench``: ground-truth swap cases (:mod:`.make`), scoring the pipeline on them (:mod:`.run`),
and a per-stage cost profile (:mod:`.profile`)."""
