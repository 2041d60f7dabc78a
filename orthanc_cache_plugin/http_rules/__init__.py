"""HTTP caching rules: validators, dates, conditional requests, freshness policy.

Pure functions only: nothing here imports ``orthanc`` or touches the disk.
"""
