"""``copilot run`` (a feed, file, camera or URL through the copilot) and ``copilot demo``."""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import typer

from copilot.cli_speech import DENOISER_HELP
from copilot.errors import CopilotError


def _load_config(path: Path | None) -> dict:
    """Options from a YAML file (keys as the long option names, - or _); each value is
    checked against RunConfig's field type, errors name the file and line."""
    import yaml

    from copilot.app import RunConfig

    if path is None:
        return {}
    if not path.exists():
        raise CopilotError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise CopilotError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})"
                           ) from None
    if not isinstance(data, dict):
        raise CopilotError(f"{path}: expected a mapping of option: value")
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value} if node else {}
    hints = typing.get_type_hints(RunConfig)
    out = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        where = f"{path} line {lines.get(key, '?')}"
        if name not in hints or name == "source":
            raise CopilotError(f"{where}: unknown option {key!r}")
        out[name] = _coerce(hints[name], value, f"{where}: option {key}")
    return out


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """``value`` as type ``tp`` (Optional, list, bool, int, float, str, Path) or CopilotError."""
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
    if typing.get_origin(tp) is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise CopilotError(f"{where}: expected a list, got {value!r}")
        return [_coerce(typing.get_args(tp)[0], v, where) for v in value]
    if tp is bool:
        if not isinstance(value, bool):
            raise CopilotError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                tp is int and isinstance(value, float) and not value.is_integer()):
            raise CopilotError(f"{where}: expected a number, got {value!r}")
        return tp(value)
    if tp in (str, Path):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise CopilotError(f"{where}: expected text, got {value!r}")
        return tp(str(value))
    return value


def _summary(res, cfg) -> None:  # noqa: ANN001 - RunResult, RunConfig
    print(f"frames: {res.frames_in} in, {res.frames_out} out, {res.dropped} dropped "
          f"({res.fps:.1f} fps, {res.wall_s:.1f} s)")
    why = f" ({res.vision_backend_reason})" if res.vision_backend_reason else ""
    print(f"vision: {res.vision_backend}{why}")
    if res.asr_backend and res.asr_backend != "none":
        why = f" ({res.asr_backend_reason})" if res.asr_backend_reason else ""
        print(f"speech recogniser: {res.asr_backend}{why}")
    if res.voice_backend:
        why = f" ({res.voice_backend_reason})" if res.voice_backend_reason else ""
        print(f"voice: {res.voice_backend}{why}")
    bad = {k: v for k, v in res.health.items() if v.get("errors") or v.get("hangs")}
    for name, h in bad.items():
        print(f"stage {name}: {h['state']}, {h['errors']} errors, {h['hangs']} hangs, "
              f"{h['restarts']} restarts ({h['last_error']})")
    if res.alerts or res.answers:
        print(f"alerts: {res.alerts}, answers: {res.answers}")
    for name, path in res.outputs.items():
        print(f"{name}: {path}")


def run_command(
    source: Annotated[str, typer.Argument(help="video file, feed folder, camera index or URL")],
    out: Annotated[Path | None, typer.Option(
        help="annotated .mp4, or a folder for annotated.mp4 + speech + session + report")] = None,
    realtime: Annotated[bool, typer.Option(
        "--realtime/--fast", help="pace at the source fps, or run as fast as possible")] = False,
    config: Annotated[Path | None, typer.Option(help="YAML file with these options")] = None,
    inject_fault: Annotated[list[str] | None, typer.Option(
        help="STAGE:KIND[:AFTER_S], STAGE decode|vision|speech|vad|wake|asr|brain|overlay|"
             "writer|tts|audio_out, KIND raise|hang|slow (repeatable)")] = None,
    trace: Annotated[Path | None, typer.Option(help="write trace spans (JSONL) here")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="stop after N s of media")] = None,
    decoder: Annotated[str | None, typer.Option(help="pyav | decord | opencv")] = None,
    vision: Annotated[str, typer.Option(help="auto | model | heuristic | none")] = "auto",
    model_dir: Annotated[Path | None, typer.Option(help="vision model folder")] = None,
    runtime: Annotated[str, typer.Option(
        help="vision runtime: onnxruntime | torch | tensorrt | onnxruntime-cuda")] = "onnxruntime",
    speech: Annotated[str, typer.Option(
        help="listen: auto (feed audio or --mic) | on | off; the voice speaks alerts "
             "whenever the brain runs")] = "auto",
    audio: Annotated[Path | None, typer.Option(help="audio file to replay with the video")] = None,
    mic: Annotated[bool, typer.Option(help="listen on the microphone (live)")] = False,
    speak: Annotated[bool, typer.Option(help="play answers on the loudspeaker")] = False,
    asr: Annotated[str, typer.Option(
        help="default (the measured one: hybrid; pocketsphinx, said, without Moonshine's "
             "wheel) | hybrid | moonshine-tiny | moonshine-base | pocketsphinx | "
             "faster-whisper")] = "default",
    voice: Annotated[str, typer.Option(
        help="the copilot's voice: default (Piper joe where installed, else espeak-ng, said) "
             "| piper | espeak")] = "default",
    denoiser: Annotated[str, typer.Option(help=DENOISER_HELP)] = "neural",
    voice_print: Annotated[Path | None, typer.Option(help="enrolled voice (copilot speech "
                                                      "enroll)")] = None,
    speed: Annotated[float, typer.Option(help="realtime replay speed factor")] = 1.0,
    window: Annotated[bool, typer.Option(help="show the annotated video in a window")] = False,
    consent: Annotated[bool, typer.Option(help="allow storing microphone audio")] = False,
    anonymise: Annotated[bool, typer.Option(
        "--anonymise/--no-anonymise",
        help="hide out-of-body frames and black out text outside the field of view in every "
             "output (default); --no-anonymise only for already de-identified research data "
             "(written into the session and the report)")] = True,
    analyse_every: Annotated[int | None, typer.Option(
        help="--fast: analyse every Nth frame in lockstep (0: newest frame only; default "
             "about 10 per media second)")] = None,
    procedure: Annotated[str | None, typer.Option(
        help="the procedure: cholecystectomy | bowel-survey (default: the feed's truth, "
             "else cholecystectomy); fixes which alert rules run")] = None,
    cvs: Annotated[str, typer.Option(
        help="who calls the critical view of safety: auto (the vision only where it is "
             "validated, else the surgeon: 'copilot, critical view confirmed') | vision | "
             "surgeon")] = "auto",
    taught: Annotated[Path | None, typer.Option(
        help="concepts taught by example in an earlier session (its taught.npz: prototypes "
             "only); this session's are saved as taught.npz in --out")] = None,
) -> int:
    """Run the copilot on SOURCE and write / show the annotated video."""
    from copilot.app import RunConfig, run_copilot

    opts = _load_config(config)
    cfg = RunConfig(source=source)
    for key, value in opts.items():
        if not hasattr(cfg, key):
            raise CopilotError(f"{config}: unknown option {key!r}")
        setattr(cfg, key, value)
    given = {
        "analyse_every": analyse_every,
        "out": out, "trace": trace, "max_seconds": max_seconds, "decoder": decoder,
        "model_dir": model_dir, "audio": audio, "voice_print": voice_print,
        "procedure": procedure, "taught": taught,
    }
    for key, value in given.items():
        if value is not None:
            setattr(cfg, key, value)
    cfg.mode = "realtime" if realtime else opts.get("mode", "fast")
    cfg.faults = list(inject_fault or opts.get("faults", []))
    for key, value, default in (("vision", vision, "auto"), ("runtime", runtime, "onnxruntime"),
                                ("speech", speech, "auto"), ("asr", asr, "default"),
                                ("voice", voice, "default"),
                                ("denoiser", denoiser, "neural"), ("cvs", cvs, "auto"),
                                ("speed", speed, 1.0)):
        if value != default or key not in opts:
            setattr(cfg, key, value)
    cfg.mic = mic or bool(opts.get("mic", False))
    cfg.speak = speak or bool(opts.get("speak", False))
    cfg.window = window or bool(opts.get("window", False))
    cfg.consent = consent or bool(opts.get("consent", False))
    cfg.anonymise = anonymise and bool(opts.get("anonymise", True))
    for key in ("out", "trace", "model_dir", "audio", "voice_print", "taught"):
        v = getattr(cfg, key)
        if v is not None and not isinstance(v, Path):
            setattr(cfg, key, Path(v))
    res = run_copilot(cfg)
    _summary(res, cfg)
    if res.error:
        print(f"error: {res.error}", file=sys.stderr)
    return res.exit_code


def demo_command(
    out: Annotated[Path, typer.Option(help="folder for the demo feed and the outputs")] = Path(
        "demo_out"),
    realtime: Annotated[bool, typer.Option("--realtime/--fast")] = False,
) -> int:
    """Make the 75 s demo feed (cholecystectomy, scripted alerts and questions) and run it."""
    from copilot.app import RunConfig, run_copilot
    from copilot.feeds import make_demo_feed

    feed = out / "feed"
    if not (feed / "truth.json").exists():
        print(f"making the demo feed in {feed} ...", flush=True)
        make_demo_feed(feed)
    cfg = RunConfig(source=str(feed), out=out / "run", mode="realtime" if realtime else "fast",
                    trace=out / "run" / "trace.jsonl")
    print("running the copilot on it ...", flush=True)
    res = run_copilot(cfg)
    _summary(res, cfg)
    if res.error:
        print(f"error: {res.error}", file=sys.stderr)
    else:
        print(f"demo done: open {res.outputs.get('video')} and {res.outputs.get('report', '')}")
    return res.exit_code


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``demo`` to the CLI."""
    app.command("run")(run_command)
    app.command("demo")(demo_command)
