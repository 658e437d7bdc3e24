"""Reads: the querysets, arrays and DataFrames that services, views and the API are built on.

Callers import from the module that owns a read; this package re-exports nothing,
so an import line says which kind of data it touches.

- ``candles``: markets and their candles: coverage counts, ``market_get``/``market_list``,
  the stored intervals, candle frames (one query into numpy, resampled and cached),
  the first stored open time in a range, and the admin's keyset-paged candle browser.
- ``sessions``: training sessions and their evaluation reports: the page lists
  (production, evaluation), the API's filtered lists, the trial count of a market.
- ``predictions``: a session's predictions: span and fingerprint for caches, a
  DataFrame, the CSV row stream and the API's filtered list.
- ``sweeps``: hyper-parameter sweeps: the lists with trial counts, a sweep's trials in
  order, its winner's test report and that report's headline figures.
- ``pages``: what only page assembly needs: markets grouped with their stored intervals.

Layers inside the package (an import-linter contract keeps them): ``pages`` may read
the others; ``sessions``, ``predictions``, ``paper`` and ``sweeps`` do not import each
other; ``candles`` imports none of them.
"""
