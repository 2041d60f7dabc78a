"""The benchmark of the cache plugin: ``bench/run.py`` (see README, "Benchmark")."""
