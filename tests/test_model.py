"Tests of the interest model: padding, step parity, ablations, recommend, save/load, the precision setting."
import numpy as np, pandas as pd, pytest, torch, torch.nn as nn, torch.nn.functional as F
from safetensors.torch import save_file, load_file
from interest_llm.losses import ce_chunked
from interest_llm.model import ModelConfig, InterestModel

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

def test_precision_reaches_the_chunked_ce(text_emb, monkeypatch):
    "model.precision (set by fit) is what the chunked CE multiplies in; the full-logits path ignores it."
    import interest_llm.losses as L
    seen, orig = [], L.FusedCE.apply
    monkeypatch.setattr(L.FusedCE, 'apply', lambda *a: seen.append(a[-1]) or orig(*a))
    m = InterestModel(small_cfg(), text_emb).eval()
    assert m.precision == 'fp32'
    b = train_batch()
    with torch.no_grad():
        ce32, full32 = m(b, return_logits=False)['ce'], m(b)['ce']
        m.precision = 'bf16'
        ce16, full16 = m(b, return_logits=False)['ce'], m(b)['ce']
    assert seen == [None, torch.bfloat16] and abs(float(ce32 - ce16)) < 0.01 * float(ce32)
    assert torch.equal(full32, full16)

def test_combine_parts_is_public(text_emb):
    m = InterestModel(small_cfg(combine='concat'), text_emb).eval()
    with torch.no_grad():
        e = m.combine_parts(m.adapter(m.text_emb), m.id_emb.weight)
        assert torch.equal(e[1:], m.item_embeddings()[1:])
        assert torch.equal(m.combine_parts(e, None), e) and torch.equal(m.combine_parts(None, e), e)

def test_recommend_uses_the_window_gaps(text_emb, item_ids):
    "Histories longer than max_len: the gaps restart at 0 in the window (as recommend always did)."
    from interest_llm.data import history_batch
    m = InterestModel(small_cfg(), text_emb, item_ids=item_ids).eval()
    hist, times = [f'it{j}' for j in range(1, 10)], [1000 * j * j for j in range(9)]
    idx = m._lookup(hist)[-6:]
    b = history_batch([idx], [times[-6:]], max_len=6)
    assert b['gaps'][0, 0] == 0 and b['gaps'][0, 1] == times[-5] - times[-6]
    with torch.no_grad(): s = m.score(b)[0]
    got = m.recommend(hist, k=5, times=times)
    want = [str(item_ids[i]) for i in torch.argsort(s[1:], descending=True, stable=True)[:5] + 1]
    assert got['item'].tolist() == want

# --- saved models: one format (interest_llm.checkpoint), both layouts of the current release read ----------------
def test_save_pretrained_writes_the_checkpoint_format(tmp_path, text_emb, item_ids):
    from interest_llm.checkpoint import CKPT_FORMAT, read_model_config
    m = InterestModel(small_cfg(), text_emb, item_ids=item_ids)
    m.save_pretrained(tmp_path / 'pre')
    info = read_model_config(str(tmp_path / 'pre'))
    assert info['format'] == CKPT_FORMAT and info['model_class'] == 'InterestModel'
    assert info['item_ids'] == item_ids.tolist() and info['sha256']

def test_from_pretrained_reads_the_older_layout(tmp_path, text_emb, item_ids):
    "The {'config', 'item_ids'} config.json earlier releases of save_pretrained wrote still loads."
    import json
    m = InterestModel(small_cfg(), text_emb, item_ids=item_ids).eval()
    (tmp_path / 'old').mkdir()
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / 'old' / 'model.safetensors'))
    meta = dict(config=m.cfg.to_dict(), item_ids=item_ids.tolist())
    (tmp_path / 'old' / 'config.json').write_text(json.dumps(meta))
    back = InterestModel.from_pretrained(tmp_path / 'old').eval()
    with torch.no_grad(): assert torch.equal(back.score(train_batch(1)), m.score(train_batch(1)))

def test_from_pretrained_truncated_or_missing(tmp_path, text_emb, item_ids):
    m = InterestModel(small_cfg(), text_emb, item_ids=item_ids)
    m.save_pretrained(tmp_path / 'pre')
    f = tmp_path / 'pre' / 'model.safetensors'
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(ValueError, match=r'model\.safetensors.*(truncated|corrupt)'):
        InterestModel.from_pretrained(tmp_path / 'pre')
    with pytest.raises(FileNotFoundError, match=r'no-such/model.safetensors not found'):
        InterestModel.from_pretrained(tmp_path / 'no-such')

def test_save_pretrained_is_atomic(tmp_path, text_emb, item_ids, monkeypatch):
    "A crash half-way through writing the weights leaves the previous model whole."
    import os
    import interest_llm.checkpoint as ck
    class Crash(RuntimeError): pass
    a = InterestModel(small_cfg(), text_emb, item_ids=item_ids)
    a.save_pretrained(tmp_path / 'pre')
    real = ck.save_file
    def half_write(tensors, path, metadata=None):
        real(tensors, path, metadata=metadata)
        with open(path, 'r+b') as f: f.truncate(os.path.getsize(path) // 2)
        raise Crash('power cut')
    monkeypatch.setattr(ck, 'save_file', half_write)
    b = InterestModel(small_cfg(), text_emb, item_ids=item_ids)
    torch.nn.init.zeros_(b.W_p.weight)
    with pytest.raises(Crash): b.save_pretrained(tmp_path / 'pre')
    monkeypatch.undo()
    back = InterestModel.from_pretrained(tmp_path / 'pre')
    torch.testing.assert_close(back.W_p.weight, a.W_p.weight)

# --- bad input --------------------------------------------------------------------------------------------------
def test_recommend_bad_input(text_emb, item_ids):
    m = InterestModel(small_cfg(), text_emb, item_ids=item_ids)
    known = [str(i) for i in item_ids[1:4]]
    with pytest.raises(ValueError, match=r"unknown item ids .*'no-such-item'"): m.recommend(known + ['no-such-item'])
    with pytest.raises(ValueError, match=r'history is empty'): m.recommend([])
    with pytest.raises(ValueError, match=r"unknown item ids .*'<pad>'"): m.recommend(['<pad>'])
    with pytest.raises(ValueError, match=r'k must be >= 1'): m.recommend(known, k=0)
    with pytest.raises(ValueError, match=r'times has 2 entries for a history of 3'): m.recommend(known, times=[1, 2])
    with pytest.raises(ValueError, match=r"could not convert string to float: 'noon'"):
        m.recommend(known, times=[1, 2, 'noon'])
    with pytest.raises(ValueError, match=r'no encoder'): m.recommend(known, texts=['a brand-new item'])
    long = [str(item_ids[1 + (j % N)]) for j in range(40)]   # longer than max_len: the most recent max_len count
    pd.testing.assert_frame_equal(m.recommend(long, k=5), m.recommend(long[-m.cfg.max_len:], k=5))

def test_model_rejects_bad_text_embedding(text_emb):
    cfg = small_cfg()
    with pytest.raises(ValueError, match=r'text_emb must be \(n_items\+1, text_dim\)'): InterestModel(cfg, text_emb[1:])
    with pytest.raises(ValueError, match=r"needs text_emb"): InterestModel(cfg, None)
    with pytest.raises(ValueError, match=r"item_repr must be 'text', 'id' or 'both'"): ModelConfig(n_items=3, item_repr='ids')
    bad = text_emb.clone()
    bad[5, 3] = float('nan')
    with pytest.raises(ValueError, match=r'(?i)text_emb.*(nan|non-finite)'): InterestModel(cfg, bad)
