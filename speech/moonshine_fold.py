"""Fold the weight de-quantisation out of a Moonshine ``.ort`` graph, once, into a cache.

The wheels' ``.ort`` models keep their weights as int8 and de-quantise them (Cast -> Mul ->
Add) on every run; ONNX Runtime cannot constant-fold an ORT-format model, so each decoder
step re-created ~36 M float weights (base-en: 0.3-0.9 s per token on 2 busy cores). Here the
graph is exported once to ONNX (``optimized_model_filepath``), the constant chains are
evaluated with numpy and stored as float32 initializers, and the result is cached under
``$XDG_CACHE_HOME/surgical-copilot/moonshine`` (keyed by the source file's size and mtime).
The weights are the wheel's own, only their storage changes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from speech.errors import SpeechError

log = logging.getLogger(__name__)

_FOLDABLE = {"Cast", "Mul", "Add", "Sub", "Reshape", "Transpose"}


def cache_root() -> Path:
    """Where folded models are kept."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "surgical-copilot" / "moonshine"


def folded_path(src: Path) -> Path:
    """The folded ONNX model of ``src`` (an ``.ort`` file), built on first use."""
    st = src.stat()
    key = hashlib.sha1(f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    dst = cache_root() / f"{src.stem}-{key[:12]}.onnx"
    if dst.exists():
        return dst
    try:
        _fold(src, dst)
    except Exception as exc:  # noqa: BLE001 - the unfolded model still works, slower
        raise SpeechError(f"{src}: cannot fold its weights ({str(exc)[:200]})") from None
    return dst


def _fold(src: Path, dst: Path) -> None:
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.optimized_model_filepath = str(Path(tmp) / "export.onnx")
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
        model = onnx.load(so.optimized_model_filepath)
    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    kept, folded = [], {}
    for n in g.node:
        if n.op_type in _FOLDABLE and all(i in consts for i in n.input if i):
            x = [consts[i] for i in n.input if i]
            out = _eval(n, x)
            if out is not None:
                consts[n.output[0]] = folded[n.output[0]] = out
                continue
        kept.append(n)
    used = {i for n in kept for i in n.input} | _subgraph_inputs(kept)
    used |= {o.name for o in g.output}
    del g.node[:]
    g.node.extend(kept)
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items() if k in used]
    del g.initializer[:]
    g.initializer.extend(inits)
    _name_graphs(g, "main")  # ONNX requires named (sub)graphs; the export left them empty
    tmp_dst = dst.with_suffix(".tmp")
    onnx.save(model, str(tmp_dst))
    tmp_dst.replace(dst)
    log.info("folded %d weight tensors of %s into %s", len(folded), src, dst)


def _eval(n, x: list[np.ndarray]) -> np.ndarray | None:  # noqa: ANN001 - onnx NodeProto
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
    if n.op_type == "Cast":
        from onnx import helper as h

        return x[0].astype(h.tensor_dtype_to_np_dtype(attrs["to"]))
    if n.op_type == "Mul":
        return (x[0] * x[1]).astype(np.result_type(x[0], x[1]))
    if n.op_type == "Add":
        return (x[0] + x[1]).astype(np.result_type(x[0], x[1]))
    if n.op_type == "Sub":
        return (x[0] - x[1]).astype(np.result_type(x[0], x[1]))
    if n.op_type == "Transpose":
        return np.transpose(x[0], attrs.get("perm"))
    return None  # Reshape: left to the graph


def _subgraph_inputs(nodes: list) -> set[str]:
    """Names that If / Loop subgraphs read from the outer scope."""
    out: set[str] = set()
    for n in nodes:
        for a in n.attribute:
            if a.g is not None and a.g.node:
                inner = {o for m in a.g.node for o in m.output}
                inner |= {i.name for i in a.g.initializer} | {i.name for i in a.g.input}
                out |= {i for m in a.g.node for i in m.input if i and i not in inner}
                out |= _subgraph_inputs(list(a.g.node))
    return out


def _name_graphs(g, name: str) -> None:  # noqa: ANN001 - onnx GraphProto
    """Give ``g`` and every nested subgraph a name."""
    if not g.name:
        g.name = name
    for k, n in enumerate(g.node):
        for a in n.attribute:
            if a.g is not None and a.g.node:
                _name_graphs(a.g, f"{name}_{k}_{a.name}")
