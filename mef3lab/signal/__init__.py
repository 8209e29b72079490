"""Signal processing for display, pure numpy and scipy: peak-keeping decimation, display filters.

Both the server (envelopes) and the widget (pages, zoom, filters) use these; neither owns them.
"""
