"Tests of the VAE stage: z = mu in eval mode, the KL per dimension, collapse warnings, the KL schedule."
import pytest, torch
from interest_llm.vae import InterestVAE, check_collapse, PosteriorCollapseWarning, kl_weight

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

def test_kl_weight_per_step_and_per_epoch():
    "One schedule for both units: kl_weight(epoch, warmup) is what fit's per-epoch KL warm-up applies."
    assert [kl_weight(epoch, 3) for epoch in range(5)] == [min(1.0, epoch / 3) for epoch in range(5)]
    assert kl_weight(250, 500) == 0.5 and kl_weight(7, 0) == 1.0 and kl_weight(3, 10, 'constant') == 1.0
    assert [kl_weight(s, 100, 'cyclical', n_cycles=2) for s in (0, 25, 50)] == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match='total_steps must be > 0'): kl_weight(1, 0, 'cyclical')
