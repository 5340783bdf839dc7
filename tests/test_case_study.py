"""The case study's explanations: a recommendation is never explained by itself.

`explain_recommendations` must name, for each recommended product, the *other* product of the customer's history
that is nearest in the model's item space — with the cosine similarity recomputed here independently. A re-bought
product (one already in the history) is the case that used to be explained by itself with similarity 1.0.
Run: `pytest tests/test_case_study.py -q`.
"""
import numpy as np, pandas as pd, pytest, torch

from interest_llm.data import leave_one_out
from interest_llm.simulate import simulate_drift
from interest_llm.model import ModelConfig, InterestModel
from interest_llm.case_study import explain_recommendations

@pytest.fixture(scope='module')
def setup():
    inter, _, _ = simulate_drift(n_users=30, n_items=80, n_steps=(8, 20), seed=1)
    split = leave_one_out(inter, n_negatives=0)
    torch.manual_seed(0)
    model = InterestModel(ModelConfig(n_items=split.n_items, emb_dim=8, hidden_dim=8, latent_dim=4, dropout=0.0),
                          None, item_ids=split.item_ids).eval()
    items = pd.DataFrame(dict(item=split.item_ids[1:], title=[f'product {i}' for i in split.item_ids[1:]]))
    return split, model, items

def _user(split):
    return next(u for u in range(split.n_users) if len(np.unique(split.example(u, 'test')[0])) >= 3)

def test_rebuy_is_explained_by_another_item(setup):
    split, model, items = setup
    u = _user(split); hist = np.unique(split.example(u, 'test')[0])
    with torch.no_grad():
        model.item_bias.zero_(); model.item_bias[int(hist[0])] = 1e4   # force a re-buy to the top of the ranking
    ex = explain_recommendations(model, split, items, u, k=5)
    assert ex.item.iloc[0] == split.item_ids[hist[0]] and bool(ex.rebuy.iloc[0])
    assert (ex.because_item != ex.item).all(), ex
    E = torch.nn.functional.normalize(model.item_embeddings().detach(), dim=1)
    idx = split.item_index()
    for _, r in ex.iterrows():
        j = idx[r['item']]
        others = [h for h in hist if h != j]
        cos = {h: float(E[j] @ E[h]) for h in others}
        best = max(cos, key=cos.get)
        assert r.because_item == split.item_ids[best] and r.because == f'product {split.item_ids[best]}'
        assert abs(r.similarity - round(cos[best], 3)) < 1e-3
        assert r.rebuy == (j in set(hist.tolist()))

def test_no_other_history_item(setup):
    "A history made only of the recommended item has nothing else to explain it: no reason, no similarity."
    split, model, items = setup
    u = _user(split)
    seq = split.seqs[u].copy(); one = int(seq[0]); split.seqs[u][:-1] = one   # history = one product, repeated
    try:
        with torch.no_grad(): model.item_bias.zero_(); model.item_bias[one] = 1e4
        ex = explain_recommendations(model, split, items, u, k=3)
        assert ex.item.iloc[0] == split.item_ids[one] and pd.isna(ex.because_item.iloc[0]) and pd.isna(ex.because.iloc[0]) and np.isnan(ex.similarity.iloc[0])
        assert (ex.because_item.iloc[1:] == split.item_ids[one]).all()    # the others are explained by that product
    finally: split.seqs[u][:] = seq
