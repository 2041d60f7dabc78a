# Orthanc with the cache plugin.
#   docker build -t orthanc-cache .                       (osimis/orthanc, Python 3.9)
#   docker build --build-arg BASE_IMAGE=orthancteam/orthanc -t orthanc-cache .
ARG BASE_IMAGE=osimis/orthanc
FROM ${BASE_IMAGE}

# Extra pip options, if a base image needs them.
ARG PIP_FLAGS=""

COPY pyproject.toml README.md LICENSE /opt/orthanc-cache-plugin/
COPY orthanc_cache_plugin /opt/orthanc-cache-plugin/orthanc_cache_plugin
COPY example.py /etc/orthanc/cache-plugin.py

# Orthanc's embedded Python reads the system site-packages. Bases that mark it
# externally managed (PEP 668: Debian 12 and later) need
# --break-system-packages; bases without pip get Debian's.
RUN set -e; \
    if ! python3 -m pip --version >/dev/null 2>&1; then \
        apt-get update; \
        apt-get install -y --no-install-recommends python3-pip; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    managed=""; \
    if ls /usr/lib/python3*/EXTERNALLY-MANAGED >/dev/null 2>&1; then \
        managed="--break-system-packages"; \
    fi; \
    python3 -m pip install --no-cache-dir $managed ${PIP_FLAGS} /opt/orthanc-cache-plugin; \
    mkdir -p /var/lib/orthanc/cache; \
    chmod 0700 /var/lib/orthanc/cache

# The images turn ORTHANC__SECTION__OPTION variables into configuration:
# these become "PythonScript" and the "CachePlugin" section.
ENV PYTHON_PLUGIN_ENABLED=true \
    ORTHANC__PYTHON_SCRIPT=/etc/orthanc/cache-plugin.py \
    ORTHANC__CACHE_PLUGIN__ENABLE=true \
    ORTHANC__CACHE_PLUGIN__DIRECTORY=/var/lib/orthanc/cache

VOLUME ["/var/lib/orthanc/cache"]
