"""`cnnkit evaluate`'s text: the metrics dict of evaluate_checkpoint as a terminal table."""

from __future__ import annotations


def format_metrics(m: dict) -> str:
    if m.get("task") == "segment":  # mean IoU and a per-class table (tasks/segment/metrics.py)
        from cnnkit.evaluate.api import task_module

        return task_module("segment").format_metrics(m)
    if m.get("task") == "detect":  # mAP and a per-class AP table (tasks/detect/evaluation.py)
        from cnnkit.evaluate.api import task_module

        return str(task_module("detect").format_metrics(m))
    names = m["class_names"]
    width = max(8, *(len(n) for n in names))
    if m.get("task") == "multilabel":
        return "\n".join(_multilabel_lines(m, width))
    out = _headline_lines(m) + _per_class_lines(m, width) + _confusion_lines(m, width) + _hardest_lines(m, width)
    return "\n".join(out)


def _multilabel_lines(m: dict, width: int) -> list[str]:
    out = [
        f"{m.get('dataset', '')} {m.get('split', '')}: {m['num_samples']} images, several labels each",
        f"mean AP        {m['mean_ap']:.4f}",
        f"exact match    {m['exact_match']:.2%}",
        f"loss           {m['loss']:.4f} (binary cross-entropy)",
        "",
        f"{'class':<{width}}        AP precision    recall        F1  support   (threshold {m['threshold']})",
    ]
    for n in m["class_names"]:
        c = m["per_class"][n]
        out.append(
            f"{n:<{width}} {c['ap']:9.4f} {c['precision']:9.2%} {c['recall']:9.2%} {c['f1']:9.4f} {c['support']:8d}"
        )
    mac = m["macro"]
    out.append(f"{'macro':<{width}} {m['mean_ap']:9.4f} {mac['precision']:9.2%} {mac['recall']:9.2%} {mac['f1']:9.4f}")
    return out


def _headline_lines(m: dict) -> list[str]:
    out = [
        f"{m.get('dataset', '')} {m.get('split', '')}: {m['num_samples']} images",
        f"accuracy       {m['accuracy']:.2%}",
    ]
    if m.get("note"):
        out.append(f"               ({m['note']})")
    if "top5_accuracy" in m:
        out.append(f"top-5 accuracy {m['top5_accuracy']:.2%}")
    out.append(f"loss           {m['loss']:.4f}")
    if "ece" in m:
        out.append(f"calibration    {m['ece']:.2%} expected calibration error ({len(m['calibration'])} bins)")
        if m.get("calibration_note"):
            out.append(f"               {m['calibration_note'].removeprefix('Calibration: ')}")
    if m.get("tta"):
        out.append(f"TTA            {m['tta']}")
    return out


def _per_class_lines(m: dict, width: int) -> list[str]:
    out = ["", f"{'class':<{width}} precision    recall        F1  support"]
    for n in m["class_names"]:
        c = m["per_class"][n]
        out.append(f"{n:<{width}} {c['precision']:9.2%} {c['recall']:9.2%} {c['f1']:9.4f} {c['support']:8d}")
    for avg in ("macro", "weighted"):
        if avg in m:
            a = m[avg]
            out.append(f"{avg:<{width}} {a['precision']:9.2%} {a['recall']:9.2%} {a['f1']:9.4f} {m['num_samples']:8d}")
    return out


def _confusion_lines(m: dict, width: int) -> list[str]:
    names, cm = m["class_names"], m["confusion_matrix"]
    out = ["", "confusion matrix (rows: true, columns: predicted)"]
    if len(names) > 20:
        return [*out, f"({len(names)} classes: see the JSON output)"]
    cw = max(4, len(str(max((max(r) for r in cm), default=0))) + 1, *(len(n) + 1 for n in names))
    out.append(" " * width + "".join(f"{n[: cw - 1]:>{cw}}" for n in names))
    return out + [f"{n:<{width}}" + "".join(f"{v:>{cw}}" for v in row) for n, row in zip(names, cm)]


def _hardest_lines(m: dict, width: int) -> list[str]:
    if not m.get("hardest"):
        return []
    names = m["class_names"]
    out = [
        "",
        "hardest examples (highest loss)",
        f"{'index':>7}  {'true':<{width}} {'predicted':<{width}} {'p(pred)':>8} {'loss':>7}",
    ]
    out += [
        f"{h['index']:>7}  {names[h['true']]:<{width}} {names[h['predicted']]:<{width}} {h['probability_predicted']:8.1%} {h['loss']:7.3f}"
        for h in m["hardest"][:5]
    ]
    return out
