"""Orthanc's Python script: enables the cache plugin with the configured options.

Set it as "PythonScript" in Orthanc's configuration; options go in the
"CachePlugin" section (see docs/configuration.md).
"""

from orthanc_cache_plugin import enable_cache_plugin

enable_cache_plugin()
