"""Sharded parameters (FSDP): a mesh axis ``"model"`` and ``param_sharding``.

The runs on 8 simulated CPU devices happen in a subprocess
(``tests/fsdp_helper.py``, a (2, 4) ``("data", "model")`` mesh) whose
measurements are asserted here; the rules that lay out parameters and
optimizer states are checked in this process on an abstract mesh, without
compiling anything.
"""

from __future__ import annotations

import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import helper_report
from jax.sharding import AbstractMesh
from jax.sharding import PartitionSpec as P

import jaxopt_lite as jol
from jaxopt_lite._host import sharding

HELPER = pathlib.Path(__file__).with_name("fsdp_helper.py")
MESH = AbstractMesh((2, 4), ("data", "model"))
SPLIT, REPLICATED = "P(None, 'model')", "P()"


@pytest.fixture(scope="module")
def report() -> dict:
    return helper_report(HELPER)


def test_fit_equals_one_device_with_large_leaves_split(report):
    assert report["devices"] == 8
    assert report["f32_params_rel"] < 2e-5
    assert report["f32_state_rel"] < 2e-5
    assert report["f32_loss_rel"] < 2e-6
    assert report["f64_params_rel"] < 1e-12 and report["f64_state_rel"] < 1e-12
    assert report["f64_dtype"] == "float64"
    # w1 (32 x 512) and w2 (512 x 60) along their largest divisible dimension;
    # b1 (512) and w3 (60) are below 2**14 elements
    want = {"['b1']": "P()", "['w1']": SPLIT, "['w2']": "P('model',)", "['w3']": "P()"}
    assert report["params_spec"] == want
    assert report["mu_spec"] == want and report["nu_spec"] == want
    assert report["count_spec"] == REPLICATED
    assert report["state_spec"] == {"['calls']": "P()", "['w2_avg']": "P('model',)"}


def test_params_and_adam_state_take_a_quarter_of_the_memory(report):
    # float32 params, mu and nu, and three int32 or float32 scalars
    assert report["bytes_replicated"] == 12 * (32 * 512 + 512 + 512 * 60 + 60) + 12
    # the large leaves split 4 ways, the small ones whole: 26% of the bytes
    assert report["bytes_fsdp"] == 12 * ((32 * 512 + 512 * 60) // 4 + 512 + 60) + 12


def test_resumed_sharded_run_is_bit_identical(report):
    assert report["resume_bit_identical"]
    assert report["resume_params_spec"] == report["params_spec"]


def test_a_rule_overrides_the_default(report):
    want = {"['b1']": "P('model',)", "['w1']": "P('model',)", "['w2']": "P('model',)"}
    assert report["rule_spec"] == {**want, "['w3']": "P()"}
    assert report["rule_mu_spec"] == report["rule_spec"]
    assert report["rule_params_rel"] < 2e-5


def test_flax_linen_partitioning_metadata_is_honoured(report):
    # the annotation says rows ("model", None); the size rule would split columns
    kernel = "['Dense_0']['kernel'].value"
    assert report["linen_spec"][kernel] == "P('model',)"
    assert report["linen_mu_spec"][kernel] == "P('model',)"
    assert report["linen_spec"]["['Dense_1']['kernel']"] == "P()"
    assert report["linen_params_rel"] < 2e-5
    assert report["error_linen_axis"] == (
        "ValueError: flax's metadata gives params['Dense_0']['kernel'].value "
        "P('mlp', None), but the mesh has no axis 'mlp' (its axes: ('data', 'model'))."
    )


def test_sweep_over_runs_data_and_model(report):
    assert report["sweep_params_rel"] < 2e-5 and report["sweep_loss_rel"] < 2e-6
    assert report["sweep_spec"] == {
        "['b1']": "P('runs',)",
        "['w1']": "P('runs', None, None, 'model')",  # [configs, seeds, 32, 512]
        "['w2']": "P('runs', None, 'model')",
        "['w3']": "P('runs',)",
    }
    assert report["error_sweep_runs"].startswith(
        "ValueError: param_sharding gives params['w1'] P('runs',), but the axis "
        "'runs' splits the runs of a sweep"
    )


def test_errors_name_the_leaf(report):
    assert report["error_missing_axis"] == (
        "ValueError: param_sharding gives params['w1'] P('modle',), but the mesh "
        "has no axis 'modle' (its axes: ('data', 'model'))."
    )
    assert report["error_divisible"] == (
        "ValueError: param_sharding gives params['w3'] (shape (60,)) "
        "P(('data', 'model'),), but its dimension 0 (60) is not divisible by the "
        "8 devices of ('data', 'model')."
    )
    assert report["error_structure"].startswith(
        "ValueError: param_sharding: a pytree of PartitionSpecs must have the "
        "structure of params (or a prefix of it)"
    )
    assert report["error_returns"] == (
        "TypeError: param_sharding returned 'model' for params['b1']: it must "
        "return a jax.sharding.PartitionSpec, or None for the default."
    )
    assert report["error_rank"].startswith(
        "ValueError: param_sharding gives params['b1'] (shape (512,)) "
        "P(None, None, 'model'), which names more dimensions than the leaf has."
    )


def _specs(params, rule=None, state=None, mesh=MESH) -> list[P]:
    return list(sharding.plan_specs(mesh, params, state, rule).params.specs)


def test_size_rule():
    big = 2**14
    assert sharding.size_rule(MESH, (big - 1,)) == P()  # below the threshold
    assert sharding.size_rule(MESH, (big,)) == P("model")
    assert sharding.size_rule(MESH, (16, 2048)) == P(None, "model")  # the largest
    assert sharding.size_rule(MESH, (128, 128)) == P("model")  # the first of equals
    assert sharding.size_rule(MESH, (6, 4, 1023)) == P(None, "model")  # divisible
    assert sharding.size_rule(MESH, (3, 5463)) == P()  # none divisible by 4
    assert sharding.size_rule(AbstractMesh((8,), ("data",)), (big,)) == P()


def test_rule_then_metadata_then_size():
    params = {"a": jnp.zeros((64, 512)), "b": jnp.zeros((512, 64)), "c": jnp.zeros(3)}
    assert _specs(params) == [P(None, "model"), P("model"), P()]

    def rule(path, leaf):
        return P("model") if jax.tree_util.keystr(path) == "['a']" else None

    assert _specs(params, rule) == [P("model"), P("model"), P()]
    # a pytree: a prefix of params, None where the default applies
    assert _specs(params, {"a": P(), "b": None, "c": None}) == [P(), P("model"), P()]
    assert _specs(params, P()) == [P(), P(), P()]  # one spec for every leaf
    boxed = {
        "a": nn.Partitioned(jnp.zeros((64, 512)), ("model", None)),
        "b": jnp.zeros((64, 512)),
    }
    assert _specs(boxed) == [P("model", None), P(None, "model")]
    assert _specs(boxed, {"a": P(), "b": None}) == [P(), P(None, "model")]
    state = {"avg": jnp.zeros((512, 64)), "n": jnp.zeros(())}
    specs = sharding.plan_specs(MESH, params, state, None)
    assert specs.model_state.specs == (P("model"), P())


def test_optimizer_state_mirrors_each_parameter():
    # two parameters of one shape, split differently: each moment follows its own
    params = {"a": jnp.zeros((64, 512)), "b": jnp.zeros((64, 512)), "c": jnp.zeros(())}
    rule = {"a": P("model"), "b": None, "c": None}
    mesh = AbstractMesh((2, 2, 2), ("runs", "data", "model"))
    specs = sharding.plan_specs(mesh, params, None, rule, reserved=("runs",))
    state = jax.eval_shape(jol.adamw(1e-3).init, params)
    layout = sharding.layout(specs, state)
    got = jax.tree.unflatten(layout.treedef, [s.spec for s in layout.shardings])
    for moment in (got[0].mu, got[0].nu):
        assert moment == {"a": P("model"), "b": P(None, "model"), "c": P()}
    assert got[0].count == P()
    # a sweep's block: two leading axes, the runs axis first
    block = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct((4, 2, *x.shape), x.dtype), state
    )
    layout = sharding.layout(specs, block, lead=2, prefix=("runs", None))
    got = jax.tree.unflatten(layout.treedef, [s.spec for s in layout.shardings])
    assert got[0].mu["a"] == P("runs", None, "model")
    assert got[0].count == P("runs", None)


def test_without_a_mesh_or_model_axis_nothing_is_sharded():
    params = {"w": jnp.zeros((128, 128))}
    assert sharding.plan_specs(None, params, None, None) is None
    data_only = AbstractMesh((8,), ("data",))
    assert sharding.plan_specs(data_only, params, None, None) is None
    with pytest.raises(ValueError, match=r"param_sharding says how .* pass mesh="):
        jol.fit(lambda p, b: jnp.sum(p["w"] ** 2), params, jol.sgd(0.1), steps=1,
                param_sharding=P())  # fmt: skip
    with pytest.raises(TypeError, match=r"param_sharding\['w'\] is 'model'"):
        sharding.plan_specs(MESH, params, None, {"w": "model"})


def test_fit_on_a_one_by_one_mesh_equals_no_mesh():
    mesh = jax.make_mesh((1, 1), ("data", "model"))
    x = np.linspace(-1, 1, 32 * 512, dtype=np.float32).reshape(32, 512)
    data = {"x": x, "y": x.sum(1)}

    def loss(p, b):
        return jnp.mean((b["x"] @ p["w"] - b["y"]) ** 2)

    params = {"w": jnp.zeros(512)}
    kw = dict(steps=4, batch_size=8, key=jax.random.key(0), progress=False)
    alone = jol.fit(loss, params, jol.adam(0.1), data, **kw)
    split = jol.fit(loss, params, jol.adam(0.1), data, mesh=mesh,
                    param_sharding=P("model"), **kw)  # fmt: skip
    np.testing.assert_array_equal(split.params["w"], alone.params["w"])
