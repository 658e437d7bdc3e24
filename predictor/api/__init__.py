"""The REST API (DRF): markets and candles, training sessions, predictions, reports, forecasts.

An adapter like the pages: views validate input with serializers and call
``predictor.services`` (writes) and ``predictor.selectors`` (reads); nothing
here trains or stores by itself.
"""
