"""A pytest plugin for nbval: cells tagged ``nbval-approx`` compare their numbers within a relative band.

An optimisation result depends on the order in which a CPU or GPU adds numbers (AVX2, AVX-512 and
AMX kernels, cuDNN), and an optimiser grows that difference step by step. So in a cell tagged
``nbval-approx`` every number is compared with :data:`RTOL` (a loss printed with ``:.3g`` can read
``546`` on one machine and ``540`` on another, so integers too), and the text around the numbers
exactly. Untagged cells are compared exactly, as nbval does.

RTOL: on one AMD EPYC, running the notebooks with oneDNN's AVX-512 kernels, with oneDNN limited to AVX2
(``ONEDNN_MAX_CPU_ISA=AVX2``) and with TensorFlow's Eigen kernels (``TF_ENABLE_ONEDNN_OPTS=0``) moved a
printed result by at most 6 % (20 L-BFGS iterations at 64 px; 4 % for a DeepDream loss), most
by well under 1 %. 15 % leaves room for kernels not measured (AMX, GPUs), and still fails when an optimiser
changes: halving notebook 03's SGD learning rate raises its final loss by more than a third.

Use: ``PYTHONPATH=tests pytest --nbval notebooks -p nbval_approx`` (the Makefile's ``test``).
"""

from __future__ import annotations

import copy
import math
import re

import pytest

TAG = "nbval-approx"
RTOL = 0.15
# A number: 12, 1.25, -3e+05, 2.1e-07, 106,800 (thousands commas), .5; not part of a word.
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)(?![\w.])")
_PLACEHOLDER = "≈NUMBER"


def _take_numbers(text: str, found: list[float]) -> str:
    def replace(match: re.Match) -> str:
        found.append(float(match.group().replace(",", "")))
        return _PLACEHOLDER

    return _NUMBER.sub(replace, text)


def _strip(outputs, found: list[float]):
    """Copies of ``outputs`` with each number in their text replaced by a placeholder; the numbers go to ``found``."""
    outputs = copy.deepcopy(outputs)
    for output in outputs:
        if "text" in output:
            output["text"] = _take_numbers("".join(output["text"]), found)
        data = output.get("data", {})
        if "text/plain" in data:
            data["text/plain"] = _take_numbers("".join(data["text/plain"]), found)
        for key in [key for key in data if key == "text/html" or key.startswith("image/")]:
            del data[key]  # HTML repeats the plain text's numbers; a picture of a result has its pixels
    return outputs


def _patch(cell_class) -> None:
    exact = cell_class.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        if TAG not in self.cell.metadata.get("tags", []):
            return exact(self, test, ref, skip_compare)
        test_numbers: list[float] = []
        ref_numbers: list[float] = []
        if not exact(self, _strip(test, test_numbers), _strip(ref, ref_numbers), skip_compare):
            return False
        far = [(r, t) for r, t in zip(ref_numbers, test_numbers)
               if not math.isclose(r, t, rel_tol=RTOL, abs_tol=0.0)]
        if len(ref_numbers) != len(test_numbers) or far:
            self.comparison_traceback.append(
                f"numbers outside the relative band {RTOL:g} (committed → this run): "
                + ", ".join(f"{r:g} → {t:g}" for r, t in far or zip(ref_numbers, test_numbers)))
            return False
        return True

    cell_class.compare_outputs = compare_outputs


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config) -> None:
    from nbval.plugin import IPyNbCell

    if not getattr(IPyNbCell, "_nstdream_approx", False):
        _patch(IPyNbCell)
        IPyNbCell._nstdream_approx = True
