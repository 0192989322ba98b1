"""``train.metrics``, ``train.threshold`` and metric monitors in the spec: validated without torch,
with did-you-mean, per task; user metrics registered from Python validate like built-ins."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

import nnspec
from nnspec.errors import SpecError
from nnspec.registry import RegistryError
from nnspec.spec.metrics import METRIC_INFO, metric_column, metric_names
from nnspec.spec.train import resolve_mode

HEAD = {"binary": 1, "classification": 3, "multilabel": 3, "regression": 1}


def spec_text(task: str, train: str) -> str:
    return (
        f"task: {task}\nmodel: {{input_shape: [4], layers: [{{linear: {HEAD[task]}}}]}}\n"
        f"train: {train}\n"
    )


def test_default_metrics_are_the_task_defaults() -> None:
    plan = nnspec.compile(nnspec.loads(spec_text("binary", "{}"))).plan
    assert plan.metrics == ("accuracy", "f1", "auroc")
    assert plan.train.threshold == 0.5


def test_chosen_metrics_and_a_monitored_one_not_listed() -> None:
    text = spec_text("binary", "{metrics: [pr_auc, recall], early_stopping: {monitor: val_f1}}")
    plan = nnspec.compile(nnspec.loads(text)).plan
    assert plan.metrics == ("pr_auc", "recall", "f1")
    assert (plan.monitor, plan.mode) == ("val_f1", "max")


def test_top_k_accuracy_is_a_classification_family() -> None:
    text = spec_text("classification", "{metrics: [top_5_accuracy], "
                     "early_stopping: {monitor: val_top_5_accuracy}}")  # fmt: skip
    plan = nnspec.compile(nnspec.loads(text)).plan
    assert plan.metrics == ("top_5_accuracy",) and plan.mode == "max"
    with pytest.raises(SpecError, match="unknown metric 'top_0_accuracy'"):
        nnspec.loads(spec_text("classification", "{metrics: [top_0_accuracy]}"))
    with pytest.raises(SpecError, match="defined for classification, not for task 'binary'"):
        nnspec.loads(spec_text("binary", "{metrics: [top_2_accuracy]}"))


def test_unknown_metric_names_the_field_with_a_suggestion() -> None:
    with pytest.raises(SpecError) as err:
        nnspec.loads(spec_text("binary", "{metrics: [accuracy, pr_acu, accuracy]}"))
    text = str(err.value)
    assert "train.metrics" in text and "<spec>:3:" in text
    assert "unknown metric 'pr_acu'; did you mean 'pr_auc'?" in text
    assert "listed twice: accuracy" in text


def test_metrics_of_another_task_and_a_threshold_out_of_place_are_all_reported() -> None:
    text = spec_text("classification", "{metrics: [accuracy, mae], threshold: 0.3, "
                     "early_stopping: {monitor: val_pr_auc}}")  # fmt: skip
    with pytest.raises(SpecError) as err:
        nnspec.loads(text)
    message = str(err.value)
    assert "3 problems" in message
    assert "train.metrics.1: metric 'mae' is defined for regression, not for task" in message
    assert "train.threshold: train.threshold applies to binary and multilabel" in message
    assert "train.early_stopping.monitor: 'val_pr_auc' is defined for binary, multilabel" in message


def test_monitor_suggestion_prefers_the_name_it_abbreviates() -> None:
    with pytest.raises(SpecError, match="did you mean 'val_accuracy'"):
        nnspec.loads(spec_text("classification", "{early_stopping: {monitor: val_acc}}"))


@pytest.mark.parametrize("value", [0.0, 1.0, 1.5])
def test_threshold_is_a_probability(value: float) -> None:
    with pytest.raises(SpecError, match=r"train\.threshold"):
        nnspec.loads(spec_text("binary", f"{{threshold: {value}}}"))


def test_modes_follow_the_table() -> None:
    assert resolve_mode("val_pr_auc", "auto") == "max"
    assert resolve_mode("val_mse", "auto") == "min"
    assert resolve_mode("val_loss", "auto") == "min"
    assert metric_column("test", "top_5_accuracy") == "test_top_5_accuracy"


def test_validating_metrics_imports_no_torch() -> None:
    code = (
        "import sys, nnspec\n"
        "s = nnspec.loads('task: binary\\nmodel: {input_shape: [4], layers: [{linear: 1}]}\\n"
        "train: {metrics: [pr_auc, f1], threshold: 0.7, early_stopping: {monitor: val_pr_auc}}')\n"
        "assert s.train.metrics == ('pr_auc', 'f1')\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def max_error() -> Iterator[str]:
    @nnspec.register_metric("test_max_error", tasks=["regression"], higher_is_better=False,
                            description="largest absolute error")  # fmt: skip
    def fn(y: np.ndarray, p: np.ndarray) -> float:
        return float(np.abs(y - p).max())

    yield "test_max_error"
    from nnspec.run.metrics import unregister_metric

    unregister_metric("test_max_error")


def test_a_user_metric_validates_lists_and_monitors(max_error: str) -> None:
    text = spec_text("regression", f"{{metrics: [mae, {max_error}], "
                     f"early_stopping: {{monitor: val_{max_error}}}}}")  # fmt: skip
    plan = nnspec.compile(nnspec.loads(text)).plan
    assert plan.metrics == ("mae", max_error) and plan.mode == "min"
    assert max_error in metric_names("regression") and max_error not in metric_names("binary")
    assert METRIC_INFO[max_error].description == "largest absolute error"
    with pytest.raises(SpecError, match=f"'{max_error}' is defined for regression"):
        nnspec.loads(spec_text("binary", f"{{metrics: [{max_error}]}}"))


def test_user_metric_names_are_checked(max_error: str) -> None:
    with pytest.raises(RegistryError, match="already registered"):
        nnspec.register_metric("accuracy", tasks=["binary"])(lambda y, p: 0.0)
    with pytest.raises(RegistryError, match="already registered"):
        nnspec.register_metric(max_error, tasks=["regression"])(lambda y, p: 0.0)
    with pytest.raises(ValueError, match="must be snake_case"):
        nnspec.register_metric("Bad-Name", tasks=["binary"])(lambda y, p: 0.0)
    with pytest.raises(ValueError, match="tasks must be some of"):
        nnspec.register_metric("ok_name", tasks=["clasification"])(lambda y, p: 0.0)
    with pytest.raises(TypeError, match="a function or a Metric subclass"):
        nnspec.register_metric("ok_name", tasks=["binary"])(42)
    assert "ok_name" not in METRIC_INFO  # nothing half-registered
