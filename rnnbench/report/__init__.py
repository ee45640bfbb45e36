"""Reporting: tables, figures and one HTML page from the ``result.json`` records of runs and sweeps.

``records`` loads records into runs (flattened settings, metric look-up); ``rows`` groups them into rows, the one
grouping every view shares; ``statistics`` summarises over seeds; ``table`` (with ``cells``, ``formatting``,
``notes``) and ``compare`` build ``rnnbench table``'s tables; ``figures`` computes each figure's data, which
``plot`` draws with matplotlib (imported only when drawing) and ``html`` embeds in ``rnnbench report``'s
self-contained page, whose own script (``assets/report.js``) draws it in the browser; ``commands`` parses the
command lines.
"""
