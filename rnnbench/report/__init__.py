"""Reporting: tables and figures from the ``result.json`` records of runs and sweeps.

``records`` loads records into runs (flattened settings, metric look-up), ``statistics`` summarises
over seeds, ``table`` builds ``rnnbench table``'s tables, ``plot`` draws ``rnnbench plot``'s figures
(matplotlib, imported only when drawing).
"""
