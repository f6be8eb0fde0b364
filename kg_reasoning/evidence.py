"""Small evidence helpers of the reasoner (issue 20): choosing between findings without an
alphabetical tie-break, and confidences read from the observations instead of constants."""

from __future__ import annotations

from collections.abc import Sequence

from kg_reasoning.timeline import Observation

#: a runner-up with at least this share of the leader's summed score is "too close to call"
CLOSE_SHARE = 0.9


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def pick_finding(found: list[Observation], say: dict[str, str]
                 ) -> tuple[str | None, str, list[str]]:
    """Which detected class "this" is: (name, what decided it, the tied names).

    The class with the highest summed detection score, unless the runner-up is within
    ``CLOSE_SHARE`` of it; then the one covering more of the image (mean ``area`` at least
    1.2x), else the one nearer the image centre (mean centroid at least 0.1 nearer); if
    nothing separates them the name is None and the tied names are returned (ask back)."""
    totals: dict[str, float] = {}
    for o in found:
        totals[o.name] = totals.get(o.name, 0.0) + o.score
    ranked = sorted(totals, key=lambda n: -totals[n])
    lead = ranked[0]
    if len(ranked) == 1:
        return lead, "the only class detected", []
    second = ranked[1]
    if totals[second] < CLOSE_SHARE * totals[lead]:
        return lead, (f"the highest summed detection score ({totals[lead]:.1f} against "
                      f"{totals[second]:.1f} for the {say.get(second, second)})"), []
    area = {n: _mean([float(o.attrs["area"]) for o in found
                      if o.name == n and "area" in o.attrs]) for n in (lead, second)}
    if min(area.values()) > 0 and max(area.values()) >= 1.2 * min(area.values()):
        big = max(area, key=lambda n: area[n])
        other = second if big == lead else lead
        return big, (f"it covers more of the image ({area[big]:.1%} against {area[other]:.1%} "
                     f"for the {say.get(other, other)}), the scores being close"), []

    def off_centre(n: str) -> float:
        cs = [o.attrs["centroid"] for o in found if o.name == n and "centroid" in o.attrs]
        if not cs:
            return 1.0
        x, y = _mean([float(c[0]) for c in cs]), _mean([float(c[1]) for c in cs])
        return ((x - 0.5) ** 2 + (y - 0.5) ** 2) ** 0.5

    d = {n: off_centre(n) for n in (lead, second)}
    if abs(d[lead] - d[second]) >= 0.1:
        mid = min(d, key=lambda n: d[n])
        other = second if mid == lead else lead
        return mid, (f"it is nearer the centre of the image than the "
                     f"{say.get(other, other)}, the scores being close"), []
    return None, "nothing separates them", [lead, second]


def seen_confidence(obs: list[Observation], now_s: float, half_life_s: float = 60.0) -> float:
    """How sure a "last seen at" answer is: the mean detection score of the sightings,
    halved for every ``half_life_s`` seconds since the last one."""
    if not obs:
        return 0.0
    age = max(0.0, now_s - max(o.t_s for o in obs))
    return _mean([o.score for o in obs]) * 0.5 ** (age / half_life_s)
