"Tests of the sequence, vae and model stages (helper D): padding, step parity, ablations, recommend, save/load."
import numpy as np, pytest, torch, torch.nn as nn, torch.nn.functional as F
from safetensors.torch import save_file, load_file
from interest_llm.sequence import LSTMCellScratch, SequenceEncoder, copy_lstm_weights
from interest_llm.vae import InterestVAE, check_collapse, PosteriorCollapseWarning, kl_weight
from interest_llm.model import ModelConfig, InterestModel, ce_chunked

N, D = 40, 12

@pytest.fixture
def text_emb():
    g = torch.Generator().manual_seed(0)
    t = F.normalize(torch.randn(N + 1, D, generator=g), dim=1); t[0] = 0
    return t

@pytest.fixture
def item_ids(): return np.array(['<pad>'] + [f'it{j}' for j in range(1, N + 1)])

def train_batch(seed=0, B=4, T=7):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([T, 3, 5, 1][:B])
    items = torch.randint(1, N + 1, (B, T + 1), generator=g)
    pad = torch.arange(T + 1)[None] >= lengths[:, None] + 1
    items[pad] = 0
    gaps = torch.rand(B, T, generator=g) * 1e5; gaps[:, 0] = 0
    inp, tgt = items[:, :-1].clone(), items[:, 1:].clone()
    real = torch.arange(T)[None] < lengths[:, None]
    gaps[~real] = 0; tgt[~real] = 0; inp[~real] = 0
    return dict(items=inp, targets=tgt, gaps=gaps, lengths=lengths)

def small_cfg(**kw):
    base = dict(n_items=N, text_dim=D, emb_dim=8, hidden_dim=10, latent_dim=4, max_len=6)
    return ModelConfig(**{**base, **kw})

# --- sequence stage -------------------------------------------------------------------------------------------
def test_scratch_lstm_matches_torch():
    torch.manual_seed(0)
    cell = LSTMCellScratch(5, 6).double(); ref = copy_lstm_weights(cell, nn.LSTMCell(5, 6).double())
    lstm = copy_lstm_weights(cell, nn.LSTM(5, 6, batch_first=True).double())
    x = torch.randn(3, 9, 5, dtype=torch.float64)
    s = r = None; hs = []
    for t in range(9):
        s = cell(x[:, t], s); r = ref(x[:, t], r); hs.append(s[0])
    assert torch.allclose(s[0], r[0], atol=1e-10) and torch.allclose(s[1], r[1], atol=1e-10)
    assert torch.allclose(torch.stack(hs, 1), lstm(x)[0], atol=1e-10)

@pytest.mark.parametrize('cell', ['lstm', 'gru', 'rnn'])
@pytest.mark.parametrize('time_features', [True, False])
def test_padding_never_leaks_encoder(cell, time_features):
    torch.manual_seed(0)
    enc = SequenceEncoder(6, 8, cell=cell, num_layers=2, time_features=time_features).eval()
    x, lengths = torch.randn(3, 5, 6), torch.tensor([5, 1, 3])
    gaps = torch.rand(3, 5) * 1e4
    pad = torch.arange(5)[None] >= lengths[:, None]
    x2, g2 = x.clone(), gaps.clone()
    x2[pad] = torch.randn(int(pad.sum()), 6) * 1e3; g2[pad] = -1e9
    with torch.no_grad():
        h1, s1 = enc(x, lengths, gaps, return_state=True); h2, s2 = enc(x2, lengths, g2, return_state=True)
    assert torch.equal(h1, h2)
    assert h1[pad].abs().sum() == 0
    for a, b in zip(s1 if isinstance(s1, tuple) else (s1,), s2 if isinstance(s2, tuple) else (s2,)): assert torch.equal(a, b)

@pytest.mark.parametrize('cell', ['lstm', 'gru', 'rnn'])
def test_step_equals_forward(cell):
    torch.manual_seed(1)
    enc = SequenceEncoder(6, 8, cell=cell, num_layers=2).eval()
    x, gaps = torch.randn(2, 7, 6), torch.rand(2, 7) * 1e5
    with torch.no_grad():
        full = enc(x, torch.tensor([7, 7]), gaps)
        state, hs = None, []
        for t in range(7):
            h, state = enc.step(x[:, t], gaps[:, t], state); hs.append(h)
    assert torch.allclose(torch.stack(hs, 1), full, atol=1e-5)

def test_encoder_bad_input():
    enc = SequenceEncoder(4, 5)
    with pytest.raises(ValueError, match='lengths must be in'): enc(torch.randn(2, 3, 4), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match='out of time order'): enc(torch.randn(2, 3, 4), torch.tensor([3, 3]), -torch.ones(2, 3))
    with pytest.raises(ValueError, match='x must be'): enc(torch.randn(3, 4), torch.tensor([3]))

# --- vae stage ------------------------------------------------------------------------------------------------
def test_vae_eval_uses_mean_and_kl_matches_distributions():
    torch.manual_seed(0)
    v = InterestVAE(6, 3, recon_dim=5)
    h = torch.randn(4, 6)
    with torch.no_grad():
        z, mu, lv = v.eval()(h)
        assert torch.equal(z, mu)
        assert not torch.equal(v(h, sample=True)[0], mu)
        ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * lv).exp()), torch.distributions.Normal(0., 1.))
        assert torch.allclose(v.kl_per_dim(mu, lv), ref.mean(0), atol=1e-6)

def test_collapse_warning_and_schedule():
    v = InterestVAE(6, 3)
    with pytest.warns(PosteriorCollapseWarning):
        check_collapse(v, torch.zeros(50, 3), torch.zeros(50, 3))
    assert kl_weight(0, 10) == 0 and kl_weight(5, 10) == 0.5 and kl_weight(50, 10) == 1
    with pytest.raises(ValueError, match='kind must be'): kl_weight(1, 10, 'bogus')

# --- model ----------------------------------------------------------------------------------------------------
def test_forward_shapes_and_padding_column(text_emb):
    m = InterestModel(small_cfg(), text_emb)
    out = m(train_batch())
    assert out['logits'].shape == (4, 7, N + 1)
    assert torch.isinf(out['logits'][..., 0]).all()
    assert set(out) == {'logits', 'loss', 'ce', 'kl', 'recon'} and out['loss'].requires_grad

def test_model_step_equals_encode_history(text_emb):
    torch.manual_seed(0)
    m = InterestModel(small_cfg(num_layers=2), text_emb).eval()
    b = train_batch()
    with torch.no_grad():
        full = m.encode_history(b['items'], b['gaps'], b['lengths'])          # (B, E)
        state = None
        for t in range(7): u, state = m.step(b['items'][:1, t], b['gaps'][:1, t], state)
    assert torch.allclose(u[0], full[0], atol=1e-5)

def test_model_padding_never_leaks(text_emb):
    torch.manual_seed(0)
    m = InterestModel(small_cfg(), text_emb).eval()
    b = train_batch(); j = {k: v.clone() for k, v in b.items()}
    pad = torch.arange(7)[None] >= b['lengths'][:, None]
    j['items'][pad] = torch.randint(1, N + 1, (int(pad.sum()),)); j['gaps'][pad] = 1e9
    with torch.no_grad():
        assert torch.equal(m(b)['loss'], m(j)['loss'])
        assert torch.equal(m.score(b), m.score(j))

def test_no_future_information(text_emb):
    "The logits at position t do not depend on items after t (causality of teacher forcing)."
    m = InterestModel(small_cfg(), text_emb).eval()
    b = train_batch(); j = {k: v.clone() for k, v in b.items()}
    j['items'][0, 4:] = (j['items'][0, 4:] % N) + 1
    with torch.no_grad(): l1, l2 = m(b)['logits'], m(j)['logits']
    assert torch.equal(l1[0, :4], l2[0, :4]) and not torch.equal(l1[0, 4:], l2[0, 4:])

def test_chunked_ce_matches_full(text_emb):
    torch.manual_seed(0)
    m = InterestModel(small_cfg(dropout=0.0, adapter_dropout=0.0, use_vae=False), text_emb)
    b = train_batch()
    full = m(b)['ce']; lite = m(b, return_logits=False)['ce']
    assert torch.allclose(full, lite, atol=1e-5)
    u, E = torch.randn(9, 8), torch.randn(N + 1, 8); t = torch.randint(1, N + 1, (9,)); bias = torch.randn(N + 1)
    ref = F.cross_entropy(u @ E[1:].T + bias[1:], t - 1)
    assert torch.allclose(ce_chunked(u, E, bias, t, chunk=4), ref, atol=1e-5)

@pytest.mark.parametrize('kw', [dict(), dict(item_repr='id', text_dim=None), dict(item_repr='text'), dict(use_vae=False),
                                dict(use_time=False), dict(cell='gru'), dict(cell='rnn', num_layers=2),
                                dict(combine='concat'), dict(loss='bce', n_neg=5), dict(n_experts=3)])
def test_ablations_build_train_and_score(text_emb, kw):
    torch.manual_seed(0)
    cfg = small_cfg(**kw)
    m = InterestModel(cfg, text_emb if cfg.uses_text else None)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    b = train_batch()
    first = m(b)['loss'].item()
    for _ in range(15):
        o = m(b); opt.zero_grad(); o['loss'].backward(); opt.step()
    assert o['loss'].item() < first
    with torch.no_grad(): s = m.eval().score(b)
    assert s.shape == (4, N + 1) and torch.isinf(s[:, 0]).all() and torch.isfinite(s[:, 1:]).all()

def test_config_errors(text_emb):
    with pytest.raises(ValueError, match='needs text_dim'): ModelConfig(n_items=5, item_repr='both')
    with pytest.raises(ValueError, match='needs text_emb'): InterestModel(small_cfg())
    with pytest.raises(ValueError, match='text_emb must be'): InterestModel(small_cfg(), text_emb[:5])
    with pytest.raises(ValueError, match='loss must be'): small_cfg(loss='hinge')

def test_recommend_errors(text_emb, item_ids):
    m = InterestModel(small_cfg(), text_emb, item_ids=item_ids)
    with pytest.raises(ValueError, match=r"unknown item ids.*'zzz'"): m.recommend(['it1', 'zzz'])
    with pytest.raises(ValueError, match='history is empty'): m.recommend([])
    with pytest.raises(ValueError, match='unknown item ids'): m.recommend(['<pad>'])
    with pytest.raises(ValueError, match='no encoder'): m.recommend(['it1'], texts=['something new'])
    with pytest.raises(ValueError, match='no item vocabulary'): InterestModel(small_cfg(), text_emb).recommend(['it1'])
    mid = InterestModel(small_cfg(item_repr='id', text_dim=None), item_ids=item_ids)
    with pytest.raises(ValueError, match='no text pathway'): mid.recommend(['it1'], texts=['x'], encoder=lambda t: torch.zeros(D))

def test_recommend_truncates_and_excludes(text_emb, item_ids):
    m = InterestModel(small_cfg(), text_emb, item_ids=item_ids)
    hist = [f'it{j}' for j in range(1, 30)]
    a = m.recommend(hist, k=5); b = m.recommend(hist[-6:], k=5)       # max_len = 6
    assert a['item'].tolist() == b['item'].tolist() and np.allclose(a['score'], b['score'])
    r = m.recommend(hist, k=N, exclude_seen=True)
    assert not set(r['item']) & set(hist) and len(r) == N - len(hist)
    assert m.training  # recommend restores the training flag

def test_cold_start_from_text(text_emb, item_ids):
    "A new item whose text vector equals a known item's text scores like that item's text part."
    torch.manual_seed(0)
    m = InterestModel(small_cfg(item_repr='text'), text_emb, item_ids=item_ids)
    vec = {'copy of it5': text_emb[5], 'opposite of it5': -text_emb[5]}
    fake = lambda text: vec[text]                                        # a callable text -> vector
    r = m.recommend(['it1', 'it2'], k=N + 2, texts={'new-a': 'copy of it5', 'new-b': 'opposite of it5'}, encoder=fake)
    assert len(r) == N + 2 and set(r.loc[r.source == 'text', 'item']) == {'new-a', 'new-b'}
    s = dict(zip(r['item'], r['score']))
    bias_gap = (m.item_bias[5] - m.item_bias[1:].mean()).item()
    assert abs(s['new-a'] - (s['it5'] - bias_gap)) < 1e-5
    class Enc:                                                            # an encoder object with .encode(list)
        def encode(self, texts): return torch.stack([vec[t] for t in texts])
    r2 = m.recommend(['it1', 'it2'], k=3, item_ids=[], texts=['copy of it5', 'opposite of it5'], encoder=Enc())
    assert set(r2['item']) == {'text:0', 'text:1'}
    h = m.recommend(None, k=3, history_texts=['copy of it5'], encoder=fake)   # a history known only by text
    assert len(h) == 3
    with pytest.raises(ValueError, match='text vectors must be'): m.recommend(['it1'], texts=['x'], encoder=lambda t: torch.zeros(D + 1))

def test_safetensors_roundtrip_identical_scores(tmp_path, text_emb, item_ids):
    torch.manual_seed(0)
    m = InterestModel(small_cfg(), text_emb, item_ids=item_ids)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(5): o = m(train_batch()); opt.zero_grad(); o['loss'].backward(); opt.step()
    m.eval(); b = train_batch(1)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / 'w.safetensors'))
    m2 = InterestModel(small_cfg(), text_emb, item_ids=item_ids); m2.load_state_dict(load_file(str(tmp_path / 'w.safetensors'))); m2.eval()
    with torch.no_grad(): assert torch.equal(m.score(b), m2.score(b))
    m.save_pretrained(tmp_path / 'pre'); m3 = InterestModel.from_pretrained(tmp_path / 'pre').eval()
    with torch.no_grad(): assert torch.equal(m.score(b), m3.score(b))
    assert m3.recommend(['it1', 'it9'], k=5).equals(m.recommend(['it1', 'it9'], k=5))

def test_bce_negatives_reproducible(text_emb):
    cfg = small_cfg(loss='bce', n_neg=7, dropout=0.0, adapter_dropout=0.0, use_vae=False)
    torch.manual_seed(0); a = InterestModel(cfg, text_emb)
    torch.manual_seed(0); b = InterestModel(cfg, text_emb)
    assert torch.equal(a(train_batch())['loss'], b(train_batch())['loss'])
