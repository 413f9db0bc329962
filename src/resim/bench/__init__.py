"""``python -m resim.bench``: end-to-end throughput of a bulk eSIM reissue.

The whole system runs on loopback as in production (API, worker processes,
SM-DP+ emulator with a fixed latency per ES2+ call, SMTP mail sink) on a
fresh database per back end; a load driver plays the BSS, the customers and
their phones over HTTP and SMTP. See ``docs/benchmarks.md`` for how to read
the report and the figures measured.
"""
