"""Orthanc's Python script for the benchmark: the plugin plus two floor routes.

``/bench/constant`` answers a constant: the cost of any Python callback.
``/bench/lookup/{study}`` first does the one ``RestApiGet`` of a study's
metadata that every cached answer needs: the floor of a cache hit. The
on-change callback logs ``bench: stable study <id>`` before handing each change
to the plugin, so the warm-up time can be read from the log.
"""

import orthanc

from orthanc_cache_plugin import enable_cache_plugin

CONSTANT = b'{"bench": "constant"}'

plugin = enable_cache_plugin(register_on_change=False)


def answer_constant(output, uri, **request):
    output.AnswerBuffer(CONSTANT, "application/json")


def answer_after_lookup(output, uri, **request):
    orthanc.RestApiGet("/studies/%s/metadata?expand" % request["groups"][0])
    output.AnswerBuffer(CONSTANT, "application/json")


def on_change(change_type, level, resource_id):
    if change_type == orthanc.ChangeType.STABLE_STUDY:
        orthanc.LogInfo("bench: stable study %s" % resource_id)
    if plugin is not None:
        plugin.on_change(change_type, level, resource_id)


orthanc.RegisterRestCallback("/bench/constant", answer_constant)
orthanc.RegisterRestCallback("/bench/lookup/([^/]+)", answer_after_lookup)
orthanc.RegisterOnChangeCallback(on_change)
