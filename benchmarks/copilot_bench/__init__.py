"""``copilot bench``: how fast and how right the copilot is on recorded feeds.

For every feed (a folder made by ``copilot feed make``; a plain video file works too, without
accuracy) the benchmark

1. runs the whole copilot (``copilot.app.run_copilot``) once per *variant* and repeat, the
   variants alternated round by round (order rotating) so machine noise hits all alike. A
   variant is one (vision backend, decoder, ASR backend); the first of each list is the
   baseline and each other name is tried with the baseline's other two choices;
2. reads each run's ``trace.jsonl`` (one monotonic clock) into latency statistics per stage
   and per end-to-end path (min / p50 / p95 / p99 / max, ms), throughput, dropped frames,
   CPU % and peak RSS (psutil, sampled in a thread), and its ``session.jsonl`` against the
   feed's ``truth.json`` (phase / bowel-segment accuracy, command accuracy, wake false
   accepts per hour, alert precision / recall / latency, answer correctness);
3. runs side-by-side component comparisons in the same process: vision backends frame by
   frame (preprocess / inference / post-process times, segmentation mIoU, phase and
   bowel-segment accuracy, CVS F1 against the masks), decoders round by round, ASR
   backends on the feed's audio (real-time factor, command accuracy, false accepts), and
   the video loop (``--fast`` passthrough + overlay) against the raw decoder.

Comparisons are reported as ratios (median of per-round / per-frame ratios). Feeds fan out
to a local process pool, or to Ray with ``ray_address``. Output: ``report.json`` (schema
``copilot/schemas/bench_report.schema.json``, documented in docs/bench_report.md),
``report.md`` and PNG plots.
"""

from benchmarks.copilot_bench.comparisons import backend_unavailable
from benchmarks.copilot_bench.config import (
    ASR_BACKENDS,
    BACKENDS,
    DECODERS,
    MODES,
    VOICES,
    BenchConfig,
    Variant,
    command_line,
    parse_list,
)
from benchmarks.copilot_bench.executors import run_bench
from benchmarks.copilot_bench.report import validate_report
from benchmarks.copilot_bench.scoring import (
    command_accuracy,
    match_alerts,
    scripted_events,
    session_accuracy,
)
from benchmarks.copilot_bench.traces import median_ratio, trace_latencies
from copilot.stats import stats_ms

__all__ = ["ASR_BACKENDS", "BACKENDS", "DECODERS", "MODES", "VOICES", "BenchConfig", "Variant",
           "backend_unavailable", "command_accuracy", "command_line", "match_alerts",
           "median_ratio", "parse_list", "run_bench", "scripted_events", "session_accuracy",
           "stats_ms", "trace_latencies", "validate_report"]
