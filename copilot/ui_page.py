"""The gradio page of ``copilot ui``: layout and event wiring (logic in copilot.ui, HTML in
copilot.ui_render). The video takes most of the width; beside it the alarm panel, the
question box, the conversation history, the microphone and "what you can ask"; the header
says what the copilot assumes."""

from __future__ import annotations

import logging
import time
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


def build_blocks(ctrl: Any) -> Any:
    """The page: header badge; video (>= 70 % of the width), its strip and timeline on the
    left; alarms, question, history, microphone and "what you can ask" on the right."""
    import gradio as gr

    from copilot.ui_plot import timeline_figure

    def alarms() -> tuple[str, bool]:
        rows = ctrl.state.alarm_rows()
        return alarms_html(rows), any(r.open for r in rows)

    with gr.Blocks(title="Surgical copilot", analytics_enabled=False, fill_width=True) as demo:
        session = gr.State({"v": -1, "played": 0})
        timer = gr.Timer(0.5)
        plot_timer = gr.Timer(2.0)
        with gr.Row(equal_height=False, elem_id="header-row"):
            header = gr.HTML(header_html(ctrl.assumptions()), elem_id="header")
            unmute = gr.Button("Unmute alerts", size="sm", visible=False, elem_id="unmute",
                               scale=0, min_width=140)
        with gr.Row(equal_height=False):
            with gr.Column(scale=10, min_width=480):
                gr.HTML(VIDEO_HTML, elem_id="video-html")
                status = gr.HTML(status_html(ctrl.status()), elem_id="status")
                plot = gr.Plot(label="phase / view timeline (bars: phase or view over media "
                               "time; o: answers, v: alerts)", elem_id="timeline")
            with gr.Column(scale=3, min_width=340):
                html0, open0 = alarms()
                alerts = gr.HTML(html0, elem_id="alerts-box")
                with gr.Row():
                    ack = gr.Button("Acknowledge alert", variant="stop", elem_id="ack",
                                    interactive=open0, size="sm")
                    ack_out = gr.Markdown("", elem_id="ack-out")
                with gr.Row():
                    question = gr.Textbox(placeholder="copilot, what phase are we in?",
                                          show_label=False, scale=4, elem_id="question")
                    ask = gr.Button("Ask", scale=1, elem_id="ask", min_width=60)
                history = gr.HTML(history_html([]), elem_id="history-box")
                reply = gr.Audio(label="copilot's voice", autoplay=True, interactive=False,
                                 type="filepath", elem_id="reply")
                mode = gr.Radio(["push-to-talk", "hands-free (say 'copilot, ...')"],
                                value="push-to-talk", label="microphone", elem_id="mode")
                ptt = gr.Audio(sources=["microphone"], type="filepath", label="push to talk: "
                               "record, ask, stop", elem_id="ptt", format=None)
                with gr.Column(visible=False, elem_id="handsfree") as hf:
                    gr.HTML(HANDS_FREE_HTML)
                heard = gr.HTML(heard_html([], 0), elem_id="heard-box")
                consent = gr.Checkbox(value=ctrl.consent, label="consent: store microphone "
                                      "audio (off: processed in memory, discarded)",
                                      elem_id="consent")
                with gr.Accordion("What you can ask", open=True, elem_id="asks-acc"):
                    gr.HTML(asks_html(_catalogue(), _teach_examples()), elem_id="asks-box")
                with gr.Accordion("Voice enrolment", open=False, elem_id="enrol-acc"):
                    enrol_audio = gr.Audio(sources=["microphone", "upload"], type="filepath",
                                           label="10-30 s of the surgeon's voice",
                                           elem_id="enrol-audio")
                    enrol_name = gr.Textbox(label="name", elem_id="enrol-name")
                    enrol_btn = gr.Button("Enrol", elem_id="enrol")
                    enrol_out = gr.Markdown("", elem_id="enrol-out")

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
            html_alerts, any_open = alarms()
            return (st, head, mute_btn, html_alerts, gr.update(interactive=any_open),
                    history_html(items), heard_html(snap["heard"], snap["chatter"]),
                    audio_out, sess)

        timer.tick(refresh, inputs=[session],
                   outputs=[status, header, unmute, alerts, ack, history, heard, reply,
                            session],
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

        plot_timer.tick(draw, inputs=[session], outputs=[plot], show_progress="hidden")

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

        ptt.stop_recording(on_ptt, inputs=[ptt], outputs=[heard, ptt])
        ptt.upload(on_ptt, inputs=[ptt], outputs=[heard, ptt])

        def on_mode(m: str) -> tuple:
            free = m.startswith("hands-free")
            if free:
                ctrl.prepare_hands_free()
            return gr.update(visible=not free), gr.update(visible=free)

        mode.change(on_mode, inputs=[mode], outputs=[ptt, hf])

        def on_consent(v: bool) -> None:
            ctrl.consent = bool(v)

        consent.change(on_consent, inputs=[consent])

        def on_ask(text: str) -> tuple:
            try:
                ctrl.ask(text)  # the answer is in the state when this returns
            except CopilotError as exc:
                gr.Warning(str(exc))
                return text, gr.skip()
            return "", history_html(ctrl.state.snapshot()["items"])

        ask.click(on_ask, inputs=[question], outputs=[question, history])
        question.submit(on_ask, inputs=[question], outputs=[question, history])

        def on_ack() -> tuple:
            msg = ctrl.acknowledge()
            html_alerts, any_open = alarms()
            return msg, html_alerts, gr.update(interactive=any_open)

        ack.click(on_ack, outputs=[ack_out, alerts, ack])

        def on_unmute() -> tuple:
            gr.Info(ctrl.unmute())
            return header_html(ctrl.assumptions()), gr.update(visible=False)

        unmute.click(on_unmute, outputs=[header, unmute])

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

        enrol_btn.click(on_enrol, inputs=[enrol_audio, enrol_name], outputs=[enrol_out])
    return demo
