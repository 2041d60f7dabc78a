# Orthanc with the cache plugin.
#   docker build -t orthanc-cache .                                   (osimis/orthanc)
#   docker build --build-arg BASE_IMAGE=orthancteam/orthanc \
#                --build-arg PIP_FLAGS=--break-system-packages -t orthanc-cache .
ARG BASE_IMAGE=osimis/orthanc
FROM ${BASE_IMAGE}

# Newer bases (Debian 12+, PEP 668) need --break-system-packages: Orthanc's
# embedded Python reads the system site-packages.
ARG PIP_FLAGS=""

COPY pyproject.toml README.md LICENSE /opt/orthanc-cache-plugin/
COPY orthanc_cache_plugin /opt/orthanc-cache-plugin/orthanc_cache_plugin
COPY example.py /etc/orthanc/cache-plugin.py

RUN python3 -m pip install --no-cache-dir ${PIP_FLAGS} /opt/orthanc-cache-plugin \
    && mkdir -p /var/lib/orthanc/cache \
    && chmod 0700 /var/lib/orthanc/cache

# The images turn ORTHANC__SECTION__OPTION variables into configuration:
# these become "PythonScript" and the "CachePlugin" section.
ENV PYTHON_PLUGIN_ENABLED=true \
    ORTHANC__PYTHON_SCRIPT=/etc/orthanc/cache-plugin.py \
    ORTHANC__CACHE_PLUGIN__ENABLE=true \
    ORTHANC__CACHE_PLUGIN__DIRECTORY=/var/lib/orthanc/cache

VOLUME ["/var/lib/orthanc/cache"]
