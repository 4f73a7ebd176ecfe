"""Profiling a served model: what it costs to serve and whether a change made it slower.

- ``inprocess``: ONNX Runtime in this process, across intra-op thread counts and batch sizes.
- ``loadgen``: load generators (wrk when installed, else a keep-alive asyncio client) and
  the generator's own ceiling against a trivial endpoint.
- ``targets``: the server under load - a container with CPU/memory limits, `mlops-ci
  serve` in a subprocess, or a URL - and its CPU/memory use read from ``/metrics``.
- ``sweep``: concurrency x CPU limits end to end, and the smallest memory limit that does
  not run out of memory.
- ``recommend``: CPU/memory requests and limits and replicas for a target throughput at a
  p99 latency objective.
- ``compare``: candidate vs champion latency, measured interleaved, decided with a
  bootstrap interval on the ratio of p95s (``stats``).
- ``report``: the report JSON, markdown tables and the latency-vs-throughput plot.

One profile, from a ``request.ProfileRequest`` to a ``run.ProfileOutcome`` (``run.profile``):
``models`` finds the candidate and the champion, ``plan`` decides which server to load and
whether to compare, ``measure`` runs the sweeps and the comparison, ``decisions`` gives the
verdicts, ``summary`` the figures and the one-line summary, ``registry`` stores the profile
with the model version. ``errors`` says what stops a profile, in profiling's own words.

Nothing here knows about the CLI or the CI platform; ``mlops_ci.steps.profile`` turns its
options into the request and the outcome into a step result.
"""
