"""Tests of interest_llm.analysis: latent states read whole sequences with the library's gaps; moved names."""
import numpy as np, pytest, torch
from interest_llm.data import leave_one_out
from interest_llm.simulate import simulate_drift, simulate_two_speeds
from interest_llm.model import ModelConfig, InterestModel
from interest_llm.analysis import latent_states, latent_trajectory

@pytest.fixture(scope='module')
def setup():
    inter, _, _ = simulate_drift(n_users=10, n_items=60, n_topics=4, n_steps=(4, 25), seed=2)
    split = leave_one_out(inter, n_negatives=0)
    torch.manual_seed(0)
    cfg = ModelConfig(n_items=split.n_items, emb_dim=8, hidden_dim=8, latent_dim=4, dropout=0.0)
    return split, InterestModel(cfg, None, item_ids=split.item_ids).eval()

def test_latent_states_match_one_user_at_a_time(setup):
    split, model = setup
    states = latent_states(model, split, what='h', batch_size=4)
    for u in (0, 3, 9):
        s, t = split.seqs[u], split.times[u]
        gaps = torch.from_numpy(np.diff(t, prepend=t[:1]).astype(np.float32))[None]
        with torch.no_grad():
            h = model.encode(torch.from_numpy(s)[None], torch.tensor([len(s)]), gaps, sample=False)['h'][0]
        assert states[u].shape == (len(s), h.shape[-1]) and np.allclose(states[u], h.numpy(), atol=1e-5)

def test_trajectory_takes_raw_ids(setup):
    split, model = setup
    a, b = latent_trajectory(model, split, 2, 'h'), latent_trajectory(model, split, split.users[2], 'h')
    assert a.equals(b) and len(a) == len(split.seqs[2])
    with pytest.raises(ValueError, match='unknown user'): latent_trajectory(model, split, 'nobody', 'h')

def test_two_speeds_moved_to_simulate():
    import interest_llm.analysis as A
    with pytest.warns(DeprecationWarning): assert A.simulate_two_speeds is simulate_two_speeds
