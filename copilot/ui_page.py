"""The gradio page of ``copilot ui``: layout and event wiring (logic in copilot.ui, HTML in
copilot.ui_render). The video takes most of the width; beside it the alarm panel, the
question box, the conversation history, the microphone and "what you can ask"; the header
says what the copilot assumes."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace
from typing import Any

from copilot.errors import CopilotError
from copilot.ui_assets import HANDS_FREE_HTML, VIDEO_HTML
from copilot.ui_render import (
    alarms_html,
    asks_html,
    header_html,
    heard_html,
    history_html,
    status_html,
)

log = logging.getLogger(__name__)


def theme() -> Any:
    """A gradio theme whose fonts are local / system fonts (nothing from a font CDN)."""
    import gradio as gr

    return gr.themes.Default(
        primary_hue="blue",
        font=[gr.themes.Font("system-ui"), gr.themes.Font("Segoe UI"), "sans-serif"],
        font_mono=[gr.themes.Font("ui-monospace"), gr.themes.Font("DejaVu Sans Mono"),
                   "monospace"],
    )


def _teach_examples() -> list[tuple[str, str]]:
    """One example sentence per teaching command (kg_reasoning.teaching), [] when the
    teaching commands cannot load."""
    try:
        from kg_reasoning.teaching import load_teaching

        t = load_teaching()
    except Exception as exc:  # noqa: BLE001 - the panel then lists no teaching commands
        log.warning("no teaching commands: %s", exc)
        return []
    name = t.base_names[0] if t.base_names else "accessory duct"
    return [(intent, tpls[0].replace("{concept}", name).replace("{colour}", "green"))
            for intent, tpls in t.templates.items() if tpls]


def _catalogue() -> Any:
    """The command catalogue (kg_reasoning's), None when it cannot load."""
    try:
        from kg_reasoning.catalogue import load_catalogue

        return load_catalogue()
    except Exception as exc:  # noqa: BLE001 - the panel says it is not available
        log.warning("no command catalogue: %s", exc)
        return None


def _alarms(ctrl: Any) -> tuple[str, bool]:
    """The alarm panel's HTML and whether a row is open (the acknowledge button's state)."""
    rows = ctrl.state.alarm_rows()
    return alarms_html(rows), any(r.open for r in rows)


def build_blocks(ctrl: Any) -> Any:
    """The page: header badge; video (>= 70 % of the width), its strip and timeline on the
    left; alarms, question, history, microphone and "what you can ask" on the right."""
    import gradio as gr

    with gr.Blocks(title="Surgical copilot", analytics_enabled=False, fill_width=True) as demo:
        c = SimpleNamespace()  # the page's components by name
        c.session = gr.State({"v": -1, "played": 0})
        c.timer = gr.Timer(0.5)
        c.plot_timer = gr.Timer(2.0)
        with gr.Row(equal_height=False, elem_id="header-row"):
            c.header = gr.HTML(header_html(ctrl.assumptions()), elem_id="header")
            c.unmute = gr.Button("Unmute alerts", size="sm", visible=False, elem_id="unmute",
                                 scale=0, min_width=140)
        with gr.Row(equal_height=False):
            with gr.Column(scale=10, min_width=480):
                gr.HTML(VIDEO_HTML, elem_id="video-html")
                c.status = gr.HTML(status_html(ctrl.status()), elem_id="status")
                c.plot = gr.Plot(label="phase / view timeline (bars: phase or view over media "
                                 "time; o: answers, v: alerts)", elem_id="timeline")
            with gr.Column(scale=3, min_width=340):
                _side_column(gr, ctrl, c)
        _wire_refresh(gr, ctrl, c)
        _wire_microphone(gr, ctrl, c)
        _wire_questions(gr, ctrl, c)
    return demo


def _side_column(gr: Any, ctrl: Any, c: SimpleNamespace) -> None:
    """Alarms, question, history, the copilot's voice, microphone, consent, "what you can
    ask" and voice enrolment (components into ``c``)."""
    html0, open0 = _alarms(ctrl)
    c.alerts = gr.HTML(html0, elem_id="alerts-box")
    with gr.Row():
        c.ack = gr.Button("Acknowledge alert", variant="stop", elem_id="ack",
                          interactive=open0, size="sm")
        c.ack_out = gr.Markdown("", elem_id="ack-out")
    with gr.Row():
        c.question = gr.Textbox(placeholder="copilot, what phase are we in?",
                                show_label=False, scale=4, elem_id="question")
        c.ask = gr.Button("Ask", scale=1, elem_id="ask", min_width=60)
    c.history = gr.HTML(history_html([]), elem_id="history-box")
    c.reply = gr.Audio(label="copilot's voice", autoplay=True, interactive=False,
                       type="filepath", elem_id="reply")
    c.mode = gr.Radio(["push-to-talk", "hands-free (say 'copilot, ...')"],
                      value="push-to-talk", label="microphone", elem_id="mode")
    c.ptt = gr.Audio(sources=["microphone"], type="filepath", label="push to talk: "
                     "record, ask, stop", elem_id="ptt", format=None)
    with gr.Column(visible=False, elem_id="handsfree") as c.hf:
        gr.HTML(HANDS_FREE_HTML)
    c.heard = gr.HTML(heard_html([], 0), elem_id="heard-box")
    c.consent = gr.Checkbox(value=ctrl.consent, label="consent: store microphone "
                            "audio (off: processed in memory, discarded)",
                            elem_id="consent")
    with gr.Accordion("What you can ask", open=True, elem_id="asks-acc"):
        gr.HTML(asks_html(_catalogue(), _teach_examples()), elem_id="asks-box")
    with gr.Accordion("Voice enrolment", open=False, elem_id="enrol-acc"):
        c.enrol_audio = gr.Audio(sources=["microphone", "upload"], type="filepath",
                                 label="10-30 s of the surgeon's voice",
                                 elem_id="enrol-audio")
        c.enrol_name = gr.Textbox(label="name", elem_id="enrol-name")
        c.enrol_btn = gr.Button("Enrol", elem_id="enrol")
        c.enrol_out = gr.Markdown("", elem_id="enrol-out")


def _wire_refresh(gr: Any, ctrl: Any, c: SimpleNamespace) -> None:
    """The timers: status, header, alarms, history, heard and the newest reply every 0.5 s
    (only what changed), the timeline plot every 2 s."""
    from copilot.ui_plot import timeline_figure

    def refresh(sess: dict) -> tuple:
        snap = ctrl.state.snapshot()
        st = status_html(ctrl.status())
        assumed = ctrl.assumptions()
        head = header_html(assumed)
        mute_btn = gr.update(visible=bool(assumed.get("muted_left_s")))
        if snap["version"] == sess["v"]:
            return (st, head, mute_btn, gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                    gr.skip(), sess)
        sess = dict(sess, v=snap["version"])
        items = snap["items"]
        voiced = [i for i in items if i.audio is not None and i.uid > sess["played"]]
        audio_out: Any = gr.skip()
        if voiced:
            newest = voiced[-1]
            sess["played"] = newest.uid
            if newest.audio is not None and newest.audio.exists():
                audio_out = str(newest.audio)
        html_alerts, any_open = _alarms(ctrl)
        return (st, head, mute_btn, html_alerts, gr.update(interactive=any_open),
                history_html(items), heard_html(snap["heard"], snap["chatter"]),
                audio_out, sess)

    c.timer.tick(refresh, inputs=[c.session],
                 outputs=[c.status, c.header, c.unmute, c.alerts, c.ack, c.history, c.heard,
                          c.reply, c.session],
                 show_progress="hidden", queue=True, concurrency_limit=4)

    def draw(sess: dict) -> Any:
        snap = ctrl.state.snapshot()
        app = ctrl.copilot
        now = float(getattr(app, "media_t_s", 0.0) or 0.0)
        coverage = None
        engine = getattr(getattr(app, "brain", None), "engine", None)
        if engine is not None and hasattr(engine, "coverage"):
            try:
                coverage = dict(engine.coverage())
            except Exception as exc:  # noqa: BLE001 - the plot is optional
                log.debug("no coverage: %s", exc)
        return timeline_figure(snap, now, coverage=coverage)

    c.plot_timer.tick(draw, inputs=[c.session], outputs=[c.plot], show_progress="hidden")


def _wire_microphone(gr: Any, ctrl: Any, c: SimpleNamespace) -> None:
    """Push-to-talk clips, the push-to-talk / hands-free switch and the consent switch."""

    def on_ptt(path: str | None) -> tuple:
        if not path:
            return gr.skip(), None
        try:
            heard_now = ctrl.push_to_talk(path)
        except CopilotError as exc:
            gr.Warning(str(exc))
            return gr.skip(), None
        except Exception as exc:  # noqa: BLE001 - the page must stay up
            log.exception("push-to-talk failed")
            gr.Warning(f"could not process the recording: {exc}")
            return gr.skip(), None
        snap = ctrl.state.snapshot()
        if not any(h.accepted for h in heard_now):
            gr.Info("no command recognised")
        return heard_html(snap["heard"], snap["chatter"]), None

    c.ptt.stop_recording(on_ptt, inputs=[c.ptt], outputs=[c.heard, c.ptt])
    c.ptt.upload(on_ptt, inputs=[c.ptt], outputs=[c.heard, c.ptt])

    def on_mode(m: str) -> tuple:
        free = m.startswith("hands-free")
        if free:
            ctrl.prepare_hands_free()
        return gr.update(visible=not free), gr.update(visible=free)

    c.mode.change(on_mode, inputs=[c.mode], outputs=[c.ptt, c.hf])

    def on_consent(v: bool) -> None:
        ctrl.consent = bool(v)

    c.consent.change(on_consent, inputs=[c.consent])


def _wire_questions(gr: Any, ctrl: Any, c: SimpleNamespace) -> None:
    """Ask (button or Enter), acknowledge an alarm, unmute the alerts, enrol a voice."""

    def on_ask(text: str) -> tuple:
        try:
            ctrl.ask(text)  # the answer is in the state when this returns
        except CopilotError as exc:
            gr.Warning(str(exc))
            return text, gr.skip()
        return "", history_html(ctrl.state.snapshot()["items"])

    c.ask.click(on_ask, inputs=[c.question], outputs=[c.question, c.history])
    c.question.submit(on_ask, inputs=[c.question], outputs=[c.question, c.history])

    def on_ack() -> tuple:
        msg = ctrl.acknowledge()
        html_alerts, any_open = _alarms(ctrl)
        return msg, html_alerts, gr.update(interactive=any_open)

    c.ack.click(on_ack, outputs=[c.ack_out, c.alerts, c.ack])

    def on_unmute() -> tuple:
        gr.Info(ctrl.unmute())
        return header_html(ctrl.assumptions()), gr.update(visible=False)

    c.unmute.click(on_unmute, outputs=[c.header, c.unmute])

    def on_enrol(path: str | None, name: str) -> str:
        if not path:
            return "record or upload the speaker's voice first"
        try:
            t0 = time.perf_counter()
            msg = ctrl.enrol(path, name)
            return f"{msg} ({time.perf_counter() - t0:.1f} s)"
        except CopilotError as exc:
            return f"not enrolled: {exc}"
        except Exception as exc:  # noqa: BLE001
            log.exception("enrolment failed")
            return f"not enrolled: {exc}"

    c.enrol_btn.click(on_enrol, inputs=[c.enrol_audio, c.enrol_name], outputs=[c.enrol_out])
