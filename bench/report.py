"""The benchmark's results as a table and a PASS/FAIL list of issue 4's targets.

Every target is a ratio of two times measured side by side in the same run. A
target whose measurement is missing is a FAIL with the reason.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from bench.scenarios import MODES, ROUTES, WARM_UP_ROUTES

MODE_TITLES = {
    "plain": "plain",
    "miss": "plugin miss",
    "hit": "plugin hit",
    "304": "plugin 304",
    "nginx": "nginx hit",
}


class Target:
    """One target: passed, what was measured, and why it failed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.passed = False
        self.measured = ""
        self.reason = ""

    def ratio(self, value: float, limit: float, at_most: bool, detail: str) -> None:
        self.passed = value <= limit if at_most else value >= limit
        self.measured = "%.2fx (%s)" % (value, detail)

    def fail(self, reason: str) -> None:
        self.passed = False
        self.reason = reason

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        text = "%s  %s: %s" % (verdict, self.name, self.measured or "not measured")
        return text + ("  [%s]" % self.reason if self.reason else "")

    def as_dict(self) -> Dict[str, Any]:
        return {
            "target": self.name,
            "passed": self.passed,
            "measured": self.measured,
            "reason": self.reason,
        }


def _median(results: Dict[str, Any], route: str, mode: str) -> Optional[float]:
    found = results.get("routes", {}).get(route, {}).get(mode, {})
    return found.get("median")


def ms(value: float) -> str:
    if value >= 100:
        return "%.0f" % value
    if value >= 10:
        return "%.1f" % value
    return "%.2f" % value


def targets(results: Dict[str, Any]) -> List[Target]:
    """Every target of issue 4, judged from ``results``."""
    found: List[Target] = []
    found += _near_nginx(results)
    found += _faster_than_plain(results)
    found += _not_slower(results)
    found += _not_modified(results)
    found.append(_throughput(results))
    found.append(_stampede(results))
    found += _warm_up(results)
    found.append(_ingest(results))
    found.append(_binary(results))
    return found


def _compare(
    name: str,
    numerator: Optional[float],
    denominator: Optional[float],
    limit: float,
    at_most: bool,
    detail: str,
) -> Target:
    target = Target(name)
    if numerator is None or denominator is None or denominator <= 0:
        target.fail("no measurement")
        return target
    value = numerator / denominator
    target.ratio(value, limit, at_most, detail % (numerator, denominator))
    return target


def _near_nginx(results: Dict[str, Any]) -> List[Target]:
    routes = [
        "study shared-tags",
        "study instances-tags",
        "series instances-tags",
        "series shared-tags",
    ]
    return [
        _compare(
            "hit <= 2x nginx hit, %s" % route,
            _median(results, route, "hit"),
            _median(results, route, "nginx"),
            2.0,
            True,
            "hit %.2f ms / nginx %.2f ms",
        )
        for route in routes
    ]


def _faster_than_plain(results: Dict[str, Any]) -> List[Target]:
    wanted = [
        ("study shared-tags", 100.0),
        ("study instances-tags", 50.0),
        ("series instances-tags", 50.0),
    ]
    return [
        _compare(
            "hit >= %.0fx faster than plain, %s" % (limit, route),
            _median(results, route, "plain"),
            _median(results, route, "hit"),
            limit,
            False,
            "plain %.1f ms / hit %.2f ms",
        )
        for route, limit in wanted
    ]


def _not_slower(results: Dict[str, Any]) -> List[Target]:
    wanted = [
        ("instance tags", 1.25),
        ("instance simplified-tags", 1.25),
        ("instance file", 1.5),
    ]
    found = []
    for route, limit in wanted:
        for mode, path in (("miss", "first request"), ("hit", "repeated request")):
            found.append(
                _compare(
                    "plugin <= %.2fx plain, %s, %s" % (limit, route, path),
                    _median(results, route, mode),
                    _median(results, route, "plain"),
                    limit,
                    True,
                    mode + " %.2f ms / plain %.2f ms",
                )
            )
    return found


def _not_modified(results: Dict[str, Any]) -> List[Target]:
    system = results.get("system", {}).get("median")
    return [
        _compare(
            "304 <= 3x /system, %s" % route,
            _median(results, route, "304"),
            system,
            3.0,
            True,
            "304 %.2f ms / system %.2f ms",
        )
        for route, _, _ in ROUTES
    ]


def _throughput(results: Dict[str, Any]) -> Target:
    rates = results.get("throughput", {})
    return _compare(
        "throughput of cached shared-tags >= 0.5x the one-lookup floor (wrk -c 8)",
        rates.get("plugin shared-tags hit"),
        rates.get("floor: callback with one lookup"),
        0.5,
        False,
        "%.0f req/s / %.0f req/s",
    )


def _stampede(results: Dict[str, Any]) -> Target:
    target = Target("16 concurrent first requests of one cold entry compute it once")
    found = results.get("stampede")
    if not found:
        target.fail("no measurement: %s" % results.get("errors", {}).get("stampede"))
        return target
    target.passed = found["computations"] == 1 and found["ok"] == found["requests"]
    target.measured = "%d computation(s), %d shared, %d hit(s); %d/%d answered 200" % (
        found["computations"],
        found["shared"],
        found["hits"],
        found["ok"],
        found["requests"],
    )
    if found["computations"] > 1 and found["shared"] == 0:
        target.fail("no follower logged 'shared': waiting on a computation in progress")
    elif found["distinct_bodies"] > 1:
        target.fail("%d different bodies" % found["distinct_bodies"])
    return target


def _warm_up(results: Dict[str, Any]) -> List[Target]:
    found = results.get("warm_up") or {}
    warmed = Target("warm-up after STABLE_STUDY: every variant of WarmUpRoutes a hit")
    variants = found.get("variants_hit", {})
    warmed.passed = bool(variants) and all(variants.values())
    if found.get("seconds") is None:
        warmed.fail("no 'cache-plugin: warmed studies' line: %s" % found.get("error"))
    else:
        warmed.measured = "warmed in %.2f s; hits: %s" % (
            found["seconds"],
            ", ".join(
                "%s %s" % (spec, "yes" if hit else "NO")
                for spec, hit in variants.items()
            ),
        )
    return [warmed]


def _ingest(results: Dict[str, Any]) -> Target:
    rates = results.get("ingest", {})
    return _compare(
        "ingest with the plugin (warm-up on) >= 0.95x plain (2 uploaders)",
        rates.get("plugin, warm-up on"),
        rates.get("plain"),
        0.95,
        False,
        "%.1f / %.1f instances/s",
    )


def _binary(results: Dict[str, Any]) -> Target:
    found = results.get("binary") or {}
    name = "StoreBinary: second archive request >= 20x faster than plain"
    if found.get("error"):
        target = Target(name)
        target.fail(found["error"])
        return target
    target = _compare(
        name,
        _median(results, "study archive", "plain"),
        found.get("second"),
        20.0,
        False,
        "plain %.0f ms / second request %.1f ms",
    )
    if found.get("problem"):
        target.fail(found["problem"])
    return target


# The readable report.


def render(results: Dict[str, Any], found: List[Target]) -> str:
    lines = [results["title"], ""]
    lines += _latency_table(results)
    try:
        lines += _extras(results)
    except (KeyError, TypeError) as error:  # a partial phase: targets still print
        lines.append("(scenario details incomplete: %r)" % error)
    lines += ["", "Targets (issue 4):"]
    lines += ["  " + target.line() for target in found]
    passed = sum(1 for target in found if target.passed)
    lines.append("  %d of %d targets passed" % (passed, len(found)))
    for note in results.get("notes", []):
        lines.append("note: " + note)
    for phase, error in results.get("errors", {}).items():
        lines.append("error in %s: %s" % (phase, error))
    return "\n".join(lines)


def _latency_table(results: Dict[str, Any]) -> List[str]:
    lines = ["Latency in ms, median / p95 (samples per column in the JSON output):"]
    lines.append("%-25s" % "route" + "".join("%18s" % MODE_TITLES[m] for m in MODES))
    for route, _, _ in ROUTES:
        found = results.get("routes", {}).get(route)
        if not found:
            continue
        cells = []
        for mode in MODES:
            stats = found.get(mode) or {}
            cell = "%s / %s" % (ms(stats["median"]), ms(stats["p95"])) if stats else "-"
            cells.append("%18s" % cell)
        lines.append("%-25s" % route + "".join(cells))
        for problem in found.get("problems", []):
            lines.append("%25s  ! %s" % ("", problem))
    system = results.get("system")
    if system:
        lines.append(
            "Orthanc's /system on the plugin's server: %s / %s ms"
            % (ms(system["median"]), ms(system["p95"]))
        )
    return lines


def _extras(results: Dict[str, Any]) -> List[str]:
    lines = ["", "Throughput, wrk -c 8 -t 2 -d 5s (requests/s):"]
    for name, rate in results.get("throughput", {}).items():
        lines.append("  %-45s %9.0f" % (name, rate))

    found = results.get("stampede")
    if found:
        lines.append("")
        lines.append(
            "16 concurrent first requests of study instances-tags?bench=cold: "
            "%d computation(s), %d shared, %d hit(s), latency median %s ms, max %s ms"
            % (
                found["computations"],
                found["shared"],
                found["hits"],
                ms(found["latency"]["median"]),
                ms(found["latency"]["max"]),
            )
        )

    stall = results.get("stall")
    if stall and stall.get("during"):
        lines.append("")
        lines.append(
            "Hits of study shared-tags while an archive miss computes (%s ms):"
            % ms(stall["slow"].get("ms", 0.0))
        )
        for key in ("idle", "during"):
            stats = stall[key]
            lines.append(
                "  %-7s median %s ms, p95 %s ms, max %s ms (%d hits)"
                % (
                    key,
                    ms(stats["median"]),
                    ms(stats["p95"]),
                    ms(stats["max"]),
                    stats["n"],
                )
            )
        lines.append(
            "  Python plugin %s holds the GIL during RestApiGet: every Python "
            "callback waits for the slow miss. From plugin 4.3, "
            '"Python": {"AllowThreads": true} releases it.'
            % results.get("python_plugin")
        )

    warm = results.get("warm_up") or {}
    if warm.get("seconds") is not None:
        misses = results.get("variant_misses", {})
        lines.append("")
        lines.append(
            "Warm-up of %s: %.2f s from STABLE_STUDY to 'warmed' (log times)"
            % (", ".join(WARM_UP_ROUTES), warm["seconds"])
        )
        if misses:
            lines.append(
                "  each variant computed alone: %s; sum %.2f s, slowest %.2f s"
                % (
                    ", ".join("%s %.2f s" % (k, v / 1000) for k, v in misses.items()),
                    sum(misses.values()) / 1000,
                    max(misses.values()) / 1000,
                )
            )

    ingest = results.get("ingest", {})
    if ingest:
        lines.append("")
        lines.append(
            "Ingest, 2 parallel uploaders (instances/s): "
            + ", ".join("%s %.1f" % item for item in ingest.items())
        )

    binary = results.get("binary") or {}
    if binary.get("first"):
        lines.append("")
        repeats = [
            "%s ms (%s)" % (ms(one["ms"]), "hit" if one["hit"] else "no hit")
            for one in binary["repeats"]
        ]
        lines.append(
            "StoreBinary archive: first request %s ms, then %s"
            % (ms(binary["first"]), ", ".join(repeats))
        )
    return lines
