"""The exact evaluator's pixels do not depend on the BLAS threads of the process (no Keras needed)."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from lazyastro.core.threads import single_thread_blas
from lazyastro.sgan import kernels as K
from lazyastro.sgan.noise import noise_window
from lazyastro.sgan.tiling import resolve_model


def test_pixels_do_not_depend_on_the_blas_thread_count():
    # the built-in model (filters 16) is big enough for OpenBLAS to split its products among
    # threads, which rounds them differently: without the one-thread rule this differs
    _, layers, meta = resolve_model(None)
    z = noise_window((8, 8), (slice(0, 8), slice(0, 8)), channels=int(meta["noise_channels"]), seed=3)
    with threadpool_limits(limits=1, user_api="blas"):
        one = K.run_layers(layers, z)
    with threadpool_limits(limits=2, user_api="blas"):
        two = K.run_layers(layers, z)
    assert one.shape == (128, 128, 3)
    assert np.array_equal(one.view(np.uint32), two.view(np.uint32))


def test_single_thread_blas_restores_the_limit_after_nested_use():
    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        with single_thread_blas():
            with single_thread_blas():
                assert set(blas_threads()) <= {1}
            assert set(blas_threads()) <= {1}  # the outer use still holds it
        assert blas_threads() == before


def test_elu_in_place_has_the_same_bits_as_the_numpy_form():
    x = np.random.default_rng(0).standard_normal(100_003).astype(np.float32)
    x[:5] = [0.0, -0.0, -1e-30, -100.0, 1e-30]
    ref = K.apply_activation(x, "elu", 1.0)
    got = K._activate_inplace(x.copy(), "elu", 1.0)
    assert np.array_equal(ref.view(np.uint32), got.view(np.uint32))
