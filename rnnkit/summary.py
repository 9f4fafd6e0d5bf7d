"""``model.summary()``: the table Keras 3 prints, with the same parameter counts."""

from __future__ import annotations


def _fmt_shape(shape):
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(_fmt_shape(s) for s in shape)
    return (
        "("
        + ", ".join("None" if s is None else str(s) for s in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def _input_shape(model):
    first = model.layers[0] if getattr(model, "layers", None) else None
    if first is None:
        return None
    if first.input_shape is not None:
        return (None,) + tuple(first.input_shape)
    if type(first).__name__ == "Embedding":
        return (None, None)
    dim = getattr(first, "input_dim", None)
    if dim is None and hasattr(first, "forward_layer"):
        dim = first.forward_layer.input_dim
    return None if dim is None else (None, None, dim)


def _bytes(n, itemsize=4):
    size = n * itemsize
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024


def summary_lines(model, line_length=80):
    widths = [31, 22, 13]
    top = "┏" + "┳".join("━" * (w + 2) for w in widths) + "┓"
    head_sep = "┡" + "╇".join("━" * (w + 2) for w in widths) + "┩"
    mid = "├" + "┼".join("─" * (w + 2) for w in widths) + "┤"
    bottom = "└" + "┴".join("─" * (w + 2) for w in widths) + "┘"

    def row(cells, left="│", sep="│", right="│"):
        a, b, c = cells
        return f"{left} {a:<{widths[0]}} {sep} {b:<{widths[1]}} {sep} {c:>{widths[2]}} {right}"

    lines = [
        f'Model: "{model.name}"',
        top,
        row(["Layer (type)", "Output Shape", "Param #"], "┃", "┃", "┃"),
        head_sep,
    ]
    shape = _input_shape(model)
    layers = list(getattr(model, "layers", model.sublayers()))
    for i, layer in enumerate(layers):
        try:
            shape = None if shape is None else layer.compute_output_shape(shape)
        except Exception:  # a shape we cannot infer is shown as '?'
            shape = None
        label = f"{layer.name} ({type(layer).__name__})"
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        if len(label) > widths[0]:
            lines.append(row([layer.name[: widths[0]], _fmt_shape(shape), params]))
            lines.append(row([f"({type(layer).__name__})", "", ""]))
        else:
            lines.append(row([label, _fmt_shape(shape), params]))
        lines.append(mid if i < len(layers) - 1 else bottom)
    if not layers:
        lines.append(bottom)
    total = model.count_params()
    trainable = sum(int(p.size) for p in model.trainable_params().values())
    itemsize = max((p.dtype.itemsize for l in model.walk() for p in l.params.values()), default=4)
    lines += [
        f" Total params: {total:,} ({_bytes(total, itemsize)})",
        f" Trainable params: {trainable:,} ({_bytes(trainable, itemsize)})",
        f" Non-trainable params: {total - trainable:,} ({_bytes(total - trainable, itemsize)})",
    ]
    return lines
