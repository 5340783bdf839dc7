"""Tests of interest_llm.adapter: whitening, the TextAdapter, LoRA and top-layer fine-tuning on tiny offline models."""
import pytest
import torch

from interest_llm.adapter import FineTunedTextEncoder, TextAdapter, info_nce, tokenize_catalogue, whitening
from interest_llm.llm import TextEncoder

TEXTS = ['red heart', 'a white metal lantern with a candle holder for the christmas table', 'blue mug', 'tea cup and cake tin']


def test_whitening_identity_covariance():
    x = torch.randn(500, 8) @ torch.randn(8, 8) + 3
    for method in ('pca', 'zca'):
        mu, W = whitening(x, method, eps=0.0)
        z = (x - mu) @ W
        assert torch.allclose(torch.cov(z.T), torch.eye(8), atol=1e-3), method
    with pytest.raises(ValueError, match='ZCA'):
        whitening(x, 'zca', dim=4)


def test_adapter_from_whitening():
    x = torch.randn(300, 16)
    mu, W = whitening(x, 'pca', dim=8)
    ad = TextAdapter.from_whitening(x, out_dim=8, n_experts=1).eval()
    assert torch.allclose(ad(x), (x - mu) @ W, atol=1e-4)


def test_lora_tiny_bert(bert_dir, tmp_path):
    torch.manual_seed(0)
    ft = FineTunedTextEncoder(bert_dir, method='lora', r=2, target_modules=['query', 'value'])
    assert 0 < ft.n_trainable < ft.n_params
    tk = tokenize_catalogue(TEXTS, ft.tokenizer, 16)
    before = ft.encode_tokens(tk)
    opt = torch.optim.SGD([p for p in ft.parameters() if p.requires_grad], lr=0.5)
    for _ in range(3):
        loss = info_nce(ft(**tk), ft(**tk).roll(1, 0))
        opt.zero_grad(); loss.backward(); opt.step()
    after = ft.encode_tokens(tk)
    assert not torch.allclose(before, after)
    te = TextEncoder(ft.save_merged(tmp_path / 'merged'))
    assert torch.allclose(te.encode(TEXTS), after, atol=1e-5)
    assert te.identity != TextEncoder(bert_dir).identity


def test_top_layer_unfreezing_gpt2(gpt_dir):
    ft = FineTunedTextEncoder(gpt_dir, method='top', top_k=1)
    names = {n for n, p in ft.named_parameters() if p.requires_grad}
    assert names and all('.h.1.' in n or n.startswith('h.1.') for n in names), names
    out = ft(**tokenize_catalogue(TEXTS, ft.tokenizer, 16))
    out.sum().backward()
    assert all(p.grad is not None for n, p in ft.named_parameters() if p.requires_grad)
    with pytest.raises(ValueError, match='method must be'):
        FineTunedTextEncoder(gpt_dir, method='everything')


def test_one_expert_shortcut_and_start():
    "One expert computes (x - b) W as x W - b W; `start` whitens when it can and falls back to random."
    torch.manual_seed(0)
    ad = TextAdapter(16, 4).eval()
    torch.nn.init.normal_(ad.b)
    x = torch.randn(5, 16)
    assert torch.allclose(ad(x), (x - ad.b[0]) @ ad.W[0], atol=1e-5)
    assert TextAdapter.start(torch.randn(50, 16), 4)[1] is True
    assert TextAdapter.start(torch.randn(3, 16), 4)[1] is False      # too few vectors to whiten to 4 dims
