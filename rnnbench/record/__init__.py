"""The ground every process stands on: the record contract and the files, locks, secrets and signals around it.

The three processes of rnnbench (the launching command, one job, the readers) meet only here: the record
schema and its atomic writes (:mod:`.schema`), the launch plan a launcher leaves for its jobs and readers
(:mod:`.plan`), the keys that are bookkeeping rather than configuration (:mod:`.keys`), directory locks
(:mod:`.locks`), credential scrubbing (:mod:`.secrets`), the signals and parent watch between a launcher and
its worker processes (:mod:`.interrupts`), and the one-line text of a record (:mod:`.lines`). Nothing here
imports another rnnbench package but :mod:`rnnbench.errors`, nor torch or Lightning.
"""
