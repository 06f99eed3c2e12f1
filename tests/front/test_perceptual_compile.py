"""PerceptualLoss(compile=True): its lazily built network is built before the compiled region, so Dynamo warns of
nothing (it traced the build before: "Dynamo does not know how to trace the builtin posix.stat", recompiles),
and the loss and its gradient equal the eager module's."""
import warnings

import pytest
import torch

from lossnets import PerceptualLoss

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny images: one thread is faster on a loaded machine


def test_compiled_loss_warns_of_nothing_and_equals_eager(alexnet_file):
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    results = []
    for compile in (False, True):
        loss_fn = PerceptualLoss("alexnet", "E", str(alexnet_file), compile=compile)
        out = x.clone().requires_grad_(True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loss = loss_fn(out, y)
            loss.backward()
        assert not [str(w.message) for w in caught if "ynamo" in str(w.message) or "stat" in str(w.message)]
        results.append((loss.detach(), out.grad))
    torch.testing.assert_close(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1])
