import json

from cnnkit.deploy.report_section import report_section


def test_no_export_folder_no_section(tmp_path):
    assert report_section(tmp_path) is None
    (tmp_path / "export").mkdir()
    assert report_section(tmp_path) is None


def test_section_shows_the_numbers_the_verbs_wrote(tmp_path):
    ex = tmp_path / "export"
    ex.mkdir()
    (ex / "model.parity.json").write_text(
        json.dumps(
            {
                "exporter": "dynamo",
                "opset": 18,
                "images": 64,
                "source": "test split",
                "max_abs_diff": 1.5e-6,
                "mean_abs_diff": 2e-7,
                "top1_agreement": 1.0,
                "passed": True,
            }
        )
    )
    (ex / "model.int8.json").write_text(
        json.dumps(
            {
                "int8": "/x/model.int8.onnx",
                "mode": "static",
                "calibration": "train split",
                "accuracy_fp32": 0.9812,
                "accuracy_int8": 0.9790,
                "drop_points": 0.22,
                "size_bytes": {"fp32": 4000, "int8": 1200},
            }
        )
    )
    (ex / "bench_infer.json").write_text(
        json.dumps(
            {
                "threads": 2,
                "batch": 32,
                "machine": {"cpu": "Xeon", "simd": ["avx512_vnni"], "load_average": [1, 1, 1]},
                "rows": [
                    {
                        "backend": "eager",
                        "available": True,
                        "latency_ms_p50": 10.0,
                        "latency_ms_p95": 12.0,
                        "throughput_img_s": 100.0,
                        "accuracy": 0.98,
                    },
                    {
                        "backend": "onnxruntime-int8",
                        "available": True,
                        "latency_ms_p50": 3.0,
                        "latency_ms_p95": 4.0,
                        "throughput_img_s": 350.0,
                        "accuracy": 0.979,
                    },
                    {"backend": "bf16", "available": False, "reason": "no native bf16"},
                ],
            }
        )
    )
    (ex / "prune.json").write_text(json.dumps({"method": "structured-l2", "checkpoint": "p/best.ckpt", "parent": "r/best.ckpt",
        "before": {"params": 1000, "macs": 5000, "latency_ms_b1": 2.0, "accuracy": 0.9}, "after_pruning": {"params": 500, "macs": 2500, "latency_ms_b1": 1.0, "accuracy": 0.5},
        "after_recovery": {"params": 500, "macs": 2500, "latency_ms_b1": 1.0, "accuracy": 0.89}}))  # fmt: skip
    sid, title, body = report_section(tmp_path)
    assert (sid, title) == ("deployment", "Deployment")
    for text in (
        "1.50e-06",
        "100.00%",
        "passed",
        "98.12%",
        "97.90%",
        "+0.22",
        "3.50×",
        "unavailable: no native bf16",
        "2,500",
        "89.00%",
        "after recovery",
    ):
        assert text in body, text


def test_report_html_includes_it(run_copy):
    from cnnkit.deploy.export import export_checkpoint
    from cnnkit.report.html import EXTRA_SECTIONS

    assert "cnnkit.deploy.report_section" in EXTRA_SECTIONS
    export_checkpoint(run_copy, exporter="torchscript", images=4)
    _, _, body = report_section(run_copy)
    assert "model.onnx" in body and "torchscript" in body
