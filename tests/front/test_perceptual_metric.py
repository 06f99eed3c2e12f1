"""PerceptualMetric: the kernel's per-image distance, lpips's value and spatial map for its taps, the N x M
matrix against pairwise calls, running means, and the same mean from two gloo processes."""
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lossnets import LossNetwork, PerceptualMetric
from lossnets.kernels import perceptual_distance

LPIPS_ALEX = ("features.1", "features.4", "features.7", "features.9", "features.11")


def _images(n, h=40, w=40, seed=0):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_equals_perceptual_distance_per_image(alexnet_file):
    metric = PerceptualMetric("alexnet", ("E", "S", "L"), str(alexnet_file), layer_weights={"E": 1, "S": 0.5, "L": 2})
    x, y = _images(3, seed=1), _images(3, seed=2)
    result = metric(x, y, per_tap=True)
    net = LossNetwork("alexnet", ("E", "S", "L"), str(alexnet_file), device="cpu")
    fx, fy = net(x), net(y)
    per_tap = {k: perceptual_distance(fx[k], fy[k]) for k in net.layers}
    torch.testing.assert_close(result.value, per_tap["E"] + 0.5 * per_tap["S"] + 2 * per_tap["L"])
    for k in net.layers:
        torch.testing.assert_close(result.per_tap[k], per_tap[k])
    assert result.config.startswith(net.config) and "tap_weights=1,0.5,2" in result.config
    assert PerceptualMetric("alexnet", "E", str(alexnet_file), reduction="mean")(x, y).value.shape == ()


def test_equals_lpips_value_and_spatial_map(alexnet_file, lpips_alex):
    model, lin_file = lpips_alex
    metric = PerceptualMetric("alexnet", None, str(alexnet_file), lin=str(lin_file), input_range=(-1, 1))
    assert metric.layers == ("E", "S", "M", "features.9", "L")  # the lpips taps, registered ones by letter
    x, y = _images(2, 44, 60, seed=3) * 2 - 1, _images(2, 44, 60, seed=4) * 2 - 1
    with torch.no_grad():
        gold_map = model(x, y)
        model.spatial = False
        gold_value = model(x, y).flatten()
        model.spatial = True
    result = metric(x, y, spatial=True)
    torch.testing.assert_close(result.value, gold_value, rtol=1e-5, atol=1e-7)
    assert result.spatial.shape == gold_map.shape == (2, 1, 44, 60)
    torch.testing.assert_close(result.spatial, gold_map, rtol=1e-5, atol=1e-7)
    assert f"lin={lin_file.name}@" in result.config and "range=[-1,1]" in result.config


def test_matrix_equals_pairwise_calls(alexnet_file):
    metric = PerceptualMetric("alexnet", ("E", "M"), str(alexnet_file))
    xs, ys = _images(3, seed=5), _images(2, seed=6)
    result = metric.matrix(xs, ys, per_tap=True, batch_size=2)
    assert result.value.shape == (3, 2) and result.per_tap["M"].shape == (3, 2)
    for i in range(3):
        torch.testing.assert_close(result.value[i], metric(xs[i:i + 1].expand(2, -1, -1, -1), ys).value)
    square = metric.matrix(xs).value
    torch.testing.assert_close(square, square.T)
    assert (square.diagonal() == 0).all()


def test_running_mean_and_reset(alexnet_file):
    metric = PerceptualMetric("alexnet", ("E", "S"), str(alexnet_file))
    x, y = _images(5, seed=7), _images(5, seed=8)
    metric.update(x[:2], y[:2])
    metric.update(x[2:], y[2:])
    result = metric.compute()
    whole = metric(x, y, per_tap=True)
    assert result.count == 5 and result.config == whole.config
    torch.testing.assert_close(result.value, whole.value.mean())
    torch.testing.assert_close(result.per_tap["S"], whole.per_tap["S"].mean())
    metric.reset()
    with pytest.raises(ValueError, match="before any update"):
        metric.compute()


def _rank_mean(rank, init, weights, out):
    """One of two gloo processes: rank r updates on its own share (3 and 2 images) and computes."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        metric = PerceptualMetric("alexnet", ("E", "S"), weights)
        x, y = _images(5, seed=7), _images(5, seed=8)
        share = slice(0, 3) if rank == 0 else slice(3, 5)
        metric.update(x[share], y[share])
        result = metric.compute()
        torch.save({"value": result.value, "S": result.per_tap["S"], "count": result.count}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_reduce_to_the_single_process_mean(alexnet_file, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "rank"
    mp.spawn(_rank_mean, args=(f"tcp://127.0.0.1:{port}", str(alexnet_file), str(out)), nprocs=2)
    single = PerceptualMetric("alexnet", ("E", "S"), str(alexnet_file))
    single.update(_images(5, seed=7), _images(5, seed=8))
    expected = single.compute()
    for rank in range(2):
        got = torch.load(f"{out}.{rank}", weights_only=True)
        assert got["count"] == 5
        torch.testing.assert_close(got["value"], expected.value)
        torch.testing.assert_close(got["S"], expected.per_tap["S"])
