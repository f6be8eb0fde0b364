"""The soak benchmark's report: the Markdown summary and its SUMMARY rows (issue 20)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.machine import machine_line

RSS_GOAL_PCT = 5.0


def write_md(res: dict[str, Any], path: Path) -> None:
    """The human summary of a soak result."""
    a = res["analysis"]
    r = res["run"]
    f = res["feed"]
    ok = {True: "PASS", False: "FAIL"}
    mode = soak_mode(res)
    media_min, wall_min = f["media_s"] / 60, r["wall_s"] / 60
    label = (f"REALTIME soak: {media_min:g} min of media paced at the feed's frame rate, "
             f"{wall_min:.1f} min of wall clock" if mode == "realtime" else
             f"FAST-MODE soak (not realtime): {media_min:g} min of media run as fast as "
             f"possible in {wall_min:.1f} min of wall clock")
    lines = [
        "# Soak benchmark (issues 10, 20)",
        "",
        f"**{label}.**",
        "",
        f"Command: `{res['command']}`  ",
        *([f"Analysis recomputed from the samples: `{res['reanalysed']}`  "]
          if res.get("reanalysed") else []),
        f"{machine_line(res['machine'])}  ",
        f"Feed: cholecystectomy base feed of {f['base_seconds']:g} s (seed {f['seed']}, "
        f"{f['width']}x{f['height']}, {f['fps']:g} fps, x264 ultrafast, speech in audio.wav) "
        f"looped {f['loops']}x with FFmpeg stream copy = {f['media_s'] / 60:g} min of media; "
        f"made in {f['make_base_s']} s + {f['loop_s']} s.  ",
        f"Run: `--{mode}`, vision `{res['vision']}` (ran: {r.get('vision_backend') or '?'}"
        f"{'; ' + r['vision_backend_reason'] if r.get('vision_backend_reason') else ''}), "
        f"speech on (feed audio), session log + "
        f"annotated MP4; sampled every {res['sample_s']:g} s; warm-up "
        f"{a.get('warmup_media_s', 0) / 60:g} min of media.",
        "",
        f"Frames: {r['frames_in']} in, {r['frames_out']} out, {r['dropped']} dropped; "
        f"exit code {r['exit_code']}; wall {r['wall_s']} s; error: {r['error'] or 'none'}",
        "",
        "| measure | value | goal | result |",
        "| --- | --- | --- | --- |",
        f"| peak RSS growth after warm-up | {a['rss_peak_growth_pct']} % "
        f"({a['rss_after_warmup_mib']} -> peak {a['rss_peak_after_warmup_mib']} MiB, last "
        f"{a['rss_last_mib']} MiB) | <= {RSS_GOAL_PCT:g} % | {ok[a['pass_rss']]} |",
        f"| RSS trend after warm-up (least squares) | {a.get('rss_trend_mib_per_hour')} MiB "
        f"per hour of wall clock ({a['rss_trend_mib_per_media_hour']} per hour of media); "
        f"RSS rose in {a.get('rss_rises')} of {a.get('rss_steps')} sample steps; largest "
        f"step {a.get('rss_largest_step_mib')} MiB at {a.get('rss_largest_step_at_wall_s')} s; "
        f"last two thirds {a.get('rss_trend_last_two_thirds_mib_per_hour')} MiB/h | "
        f"<= {trend_limit(a):g} MiB/h (5 % of the RSS per hour) | "
        f"{ok[a.get('rss_trend_mib_per_hour', 0) <= trend_limit(a)]} |",
        f"| open file descriptors | median {a['fds_median_first_third']:g} (first third) -> "
        f"{a['fds_median_last_third']:g} (last third); transient max {a['fds_max']} "
        f"(espeak-ng pipes), last {a['fds_last']} | no growth | {ok[a['pass_fds']]} |",
        f"| threads | {a['threads_after_warmup']} after warm-up, max {a['threads_max']}, "
        f"last {a['threads_last']} | - | - |",
    ]
    for n, q in a["queues"].items():
        what = "speech lag (video - listener media time, s)" if n == "speech_lag_s" else (
            f"queue `{n}` depth (capacity {q['capacity']})")
        lines.append(
            f"| {what} | mean {q['first_third_mean']} (first third) -> "
            f"{q['last_third_mean']} (last third); max {q['first_third_max']} -> "
            f"{q['last_third_max']} | no growth | {ok[not q['grows']]} |")
    mg = r.get("memory_growth")
    if mg:
        lines += ["", f"Python allocations that grew between {mg['between_media_s'][0]:g} and "
                  f"{mg['between_media_s'][1]:g} s of media (tracemalloc):", ""]
        for site in mg["sites"]:
            lines.append(f"- +{site['size_diff_kib']} KiB ({site['count_diff']:+d} blocks): "
                         f"{' <- '.join(reversed(site['where'])) or '(outside the repo)'}")
    for note in res.get("notes", []):
        lines += ["", note]
    lines += ["", "Stage health at the end:", ""]
    for name, h in (r.get("health") or {}).items():
        lines.append(f"- {name}: {h.get('state')}, processed {h.get('processed')}, errors "
                     f"{h.get('errors')}, hangs {h.get('hangs')}, restarts {h.get('restarts')}")
    lines += ["", "Samples (every 10th): wall s, media s, RSS MiB, fds, threads, queues", "",
              "| wall s | media s | RSS MiB | fds | threads | queues |",
              "| --- | --- | --- | --- | --- | --- |"]
    for s in r["samples"][::10]:
        lines.append(f"| {s['wall_s']} | {s['media_s']} | {s['rss_mib']} | {s['fds']} | "
                     f"{s['threads']} | {s['queues']} |")
    path.write_text("\n".join(lines) + "\n")


def soak_mode(res: dict[str, Any]) -> str:
    """'realtime' or 'fast' (older results, which ran only fast, carry no mode)."""
    return res.get("mode") or res["run"].get("mode") or "fast"


def trend_limit(a: dict[str, Any]) -> float:
    """The RSS trend (MiB per wall-clock hour) that would add 5 % of the after-warm-up RSS
    in an hour."""
    return round(RSS_GOAL_PCT / 100.0 * float(a.get("rss_after_warmup_mib") or 0.0), 1)


def goals(res: dict[str, Any]) -> list[dict[str, Any]]:
    """SUMMARY rows (issue 20): what kind of soak this was, and the memory trend."""
    a, r, f = res["analysis"], res["run"], res["feed"]
    if r.get("memory_growth"):  # a tracemalloc attribution run: slowed, not a measurement
        return []
    mode = soak_mode(res)
    wall_min = round(r["wall_s"] / 60.0, 1)
    what = (f"{mode} soak, {f['width']}x{f['height']}, vision "
            f"{r.get('vision_backend') or 'not recorded'}")
    rows = [
        {"issue": 20, "name": "soak: wall clock of a realtime soak (min)",
         "target": ">= 60", "value": wall_min, "pass": wall_min >= 60, "note": what},
    ] if mode == "realtime" else []
    tag = "" if mode == "realtime" else " [FAST-MODE soak]"
    return rows + [
        {"issue": 20, "name": f"soak{tag}: RSS trend after warm-up (MiB per hour of wall clock)",
         "target": f"<= {trend_limit(a):g}", "value": a.get("rss_trend_mib_per_hour"),
         "pass": a.get("rss_trend_mib_per_hour", 0) <= trend_limit(a),
         "note": f"{what}; rose in {a.get('rss_rises')} of "
         f"{a.get('rss_steps')} steps; {a['rss_trend_mib_per_media_hour']} MiB per media hour"},
    ]
