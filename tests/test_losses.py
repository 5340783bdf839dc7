"Tests of the loss kernels: the chunked full-softmax CE in fp32 and bf16, the precision argument, the checkpointed CE."
import warnings
import pytest, torch, torch.nn.functional as F
from interest_llm.losses import (PRECISIONS, bf16_native, resolve_precision, ce_chunked, ce_checkpointed,
                                 ce_precision, FusedCE)

N = 40

def inputs(seed=0, rows=9, dim=8):
    g = torch.Generator().manual_seed(seed)
    u, E = torch.randn(rows, dim, generator=g), torch.randn(N + 1, dim, generator=g)
    return u, E, torch.randn(N + 1, generator=g), torch.randint(1, N + 1, (rows,), generator=g)

def test_chunked_ce_matches_full_softmax():
    u, E, bias, t = inputs()
    ref = F.cross_entropy(u @ E[1:].T + bias[1:], t - 1)
    for chunk in (1, 4, 1024): assert torch.allclose(ce_chunked(u, E, bias, t, chunk=chunk), ref, atol=1e-5)

def test_checkpointed_ce_matches_fused_with_gradients():
    u, E, bias, t = inputs(1)
    extra = (torch.tensor([0, 3, 8]), torch.tensor([2, 2, 40]), torch.randn(3))
    grads = []
    for fn in (ce_chunked, ce_checkpointed):
        xs = [x.clone().requires_grad_() for x in (u, E, bias, extra[2])]
        loss = fn(xs[0], xs[1], xs[2], t, chunk=4, extra=(extra[0], extra[1], xs[3]))
        grads.append([loss.detach(), *torch.autograd.grad(loss, xs)])
    for a, b in zip(*grads): assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match='fp32 only'): ce_checkpointed(u, E, bias, t, precision='bf16')

def test_precision_is_an_argument_not_state():
    u, E, bias, t = inputs(2, rows=50, dim=16)
    fp32, bf16 = ce_chunked(u, E, bias, t), ce_chunked(u, E, bias, t, precision='bf16')
    assert torch.equal(ce_chunked(u, E, bias, t, precision='fp32'), fp32)          # the default is exact fp32
    assert abs(float(fp32 - bf16)) < 0.01 * abs(float(fp32))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with ce_precision('bf16'): assert torch.equal(ce_chunked(u, E, bias, t), fp32)   # the old context sets nothing
    assert caught[0].category is DeprecationWarning
    auto = ce_chunked(u, E, bias, t, precision='auto')
    assert torch.equal(auto, bf16 if bf16_native() else fp32)

def test_fused_ce_sees_the_precision(monkeypatch):
    seen, orig = [], FusedCE.apply
    monkeypatch.setattr(FusedCE, 'apply', lambda *a: seen.append(a[-1]) or orig(*a))
    u, E, bias, t = inputs()
    for precision in ("fp32", "bf16"): ce_chunked(u, E, bias, t, precision=precision)
    assert seen == [None, torch.bfloat16]

def test_resolve_precision():
    assert PRECISIONS == ('auto', 'fp32', 'bf16')
    assert resolve_precision('fp32') == 'fp32' and resolve_precision('bf16') == 'bf16'
    assert resolve_precision('auto') == ('bf16' if bf16_native() else 'fp32')
    with pytest.raises(ValueError, match='precision must be one of'): resolve_precision('fp16')

def test_old_model_names_still_work():
    import interest_llm.model as M
    with pytest.warns(DeprecationWarning, match='interest_llm.losses.resolve_precision'):
        assert M.resolve_precision is resolve_precision
    assert M.ce_chunked is ce_chunked
