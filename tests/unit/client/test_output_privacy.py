"""How the CLI prints the privacy figures: an evaluate's audit and a model's DP record."""

from synthgen_client.cli import output

AUDIT = {
    "audited": True,
    "training_set": "digits:train",
    "copy_fraction": {"value": 0.25, "low": 0.2, "high": 0.3},
    "copy_fraction_floor": {"value": 0.0, "low": 0.0, "high": 0.004},
    "membership_inference": [
        {"name": "black-box: distance to the synthetic set (pixels)",
         "auc": {"value": 0.612, "low": 0.58, "high": 0.64},
         "tpr_at_1pct_fpr": {"value": 0.02, "low": 0.01, "high": 0.03}},
    ],
}  # fmt: skip


def test_an_audit_prints_copies_beside_held_out_real_images_and_each_attack():
    text = output.privacy_text(AUDIT)
    assert "copies 25.0% [20.0%, 30.0%] (held-out real images: 0.0%)" in text
    assert "black-box: distance to the synthetic set (pixels): AUC 0.612" in text


def test_an_audit_that_did_not_run_prints_why():
    note = "Not run: the training set of m:1 is unknown (an imported model)"
    assert output.privacy_text({"audited": False, "note": note}) == note


def test_a_dp_model_prints_its_epsilon_and_delta_and_others_a_dash():
    assert output.dp_text({"epsilon": 9.97, "delta": 1e-5}) == "ε=9.97 δ=1e-05"
    assert output.dp_text(None) == "-"


def test_job_summary_prints_intervals_floors_and_the_audit(capsys):
    job = {
        "id": "j", "kind": "evaluate", "status": "succeeded", "request": {},
        "result": {
            "summary": {
                "metrics": {
                    "copy fraction (pixels at the model's size)": {
                        "value": 0.25, "interval": [0.2, 0.3], "floor": 0.0,
                        "unit": "share of images",
                    }
                },
                "privacy": AUDIT,
            }
        },
    }  # fmt: skip
    output.job_summary(job)
    printed = capsys.readouterr().out
    assert "0.25 [0.2, 0.3] (real-vs-real 0) share of images" in printed
    assert "privacy audit" in printed and "copies 25.0%" in printed
