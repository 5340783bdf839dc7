"""The scaling benchmark (nbs/22_scale.ipynb, scripts/bench_scale.py) at tiny sizes, the evaluation's bound on the score
matrix, and the sampled softmax through `fit` and the command line. Content is checked here, never timings."""
import json, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch

from interest_llm.simulate import synthetic_log
from interest_llm.scale import takeover, loglog_slope
from interest_llm.evaluate import model_ranks, evaluate_model
from interest_llm.train import fit, TrainConfig
from interest_llm.model import ModelConfig, InterestModel

REPO = Path(__file__).resolve().parents[1]

def test_synthetic_log_sizes_and_errors():
    s = synthetic_log(5_003, 700, seed=3)
    assert sum(len(q) for q in s.seqs) == 5_003 and s.n_items == 700 and s.n_users == 100
    assert min(len(q) for q in s.seqs) >= 3 and len(s.eval_users()) == s.n_users
    assert all(np.all(np.diff(t) > 0) for t in s.times)
    with pytest.raises(ValueError, match='mean_len'): synthetic_log(100, 10, mean_len=2)
    with pytest.raises(ValueError, match='locality'): synthetic_log(100, 10, locality=1.0)

def test_bench_scale_quick_writes_json_markdown_and_figure(tmp_path):
    out = tmp_path / 'scale'
    cmd = [sys.executable, str(REPO / 'scripts' / 'bench_scale.py'), '--quick', '--events', '600,1200', '--items', '60,120',
           '--fixed-items', '60', '--fixed-events', '600', '--steps', '1', '--out', str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert p.returncode == 0, p.stderr[-3000:]
    assert 'FLOP rate' in p.stdout and 'ratio' in p.stdout                  # --quick prints the FLOP-rate ratio
    res = json.loads(out.with_suffix('.json').read_text())
    assert len(res['points']) == len(res['planned']) == 12 and not any('error' in q for q in res['points'])
    for q in res['points']:
        assert q['step_gflop'] > 0 and q['steps_per_epoch'] >= 1 and q['timed_steps'] == 1 and len(q['load']) == 6
        assert q['train_cpu_s_per_epoch'] == pytest.approx(q['step_cpu_s'] * q['steps_per_epoch'])
        assert q['mm']['square']['shape'] == [2048, 2048, 2048] and q['peak_ratio'] == pytest.approx(q['gflops_cpu'] / q['mm']['square']['gflops_cpu'])
    assert {(q['axis'], q['n_events'], q['n_items']) for q in res['points']} == {
        ('events', 600, 60), ('events', 1200, 60), ('items', 600, 60), ('items', 600, 120)}
    assert res['takeover']['fixed_events'] == [600] and res['command'].startswith('python scripts/bench_scale.py --quick')
    md = out.with_suffix('.md').read_text()
    assert md.startswith('## ') and f"`{res['command']}`" in md and 'slopes' in md and 'take over' in md
    assert md.count('\n| events |') + md.count('\n| items |') == 12 and 'one process (`--quick`)' in md
    assert out.with_suffix('.png').stat().st_size > 10_000
    # --from-json rewrites the section without measuring; a file that is no result is refused by name
    out.with_suffix('.md').unlink()
    p = subprocess.run(cmd[:2] + ['--from-json', str(out.with_suffix('.json')), '--out', str(out)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert p.returncode == 0 and out.with_suffix('.md').read_text() == md, p.stderr[-3000:]
    (tmp_path / 'bad.json').write_text('[1, 2]')
    p = subprocess.run(cmd[:2] + ['--from-json', str(tmp_path / 'bad.json'), '--out', str(out)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert p.returncode != 0 and "no 'points'" in p.stderr
    p = subprocess.run(cmd[:2] + ['--losses', 'bce,sampled'], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert p.returncode == 2 and 'must include ce' in p.stderr

def test_markdown_lists_points_a_stopped_run_did_not_measure():
    from interest_llm.scale import measure_point, scale_markdown
    p = dict(measure_point(600, 60, 'ce', steps=1, text_dim=16), axis='items')
    res = dict(points=[p], planned=[dict(axis='items', n_events=600, n_items=60, loss='ce'), dict(axis='items', n_events=600, n_items=120, loss='ce')],
               fixed_items=60, fixed_events=600, losses=['ce'], machine=dict(cpus=2), command='python scripts/bench_scale.py --x')
    md = scale_markdown(res)
    assert 'Not measured' in md and '600 events × 120 items (ce)' in md and '600 events × 60 items (ce)' not in md

def test_takeover_and_slope():
    pts = [dict(n_items=n, n_events=5, loss=l, train_cpu_s_per_epoch=v, peak_rss_mb=m) for n, l, v, m in
           [(10, 'ce', 1, 100), (100, 'ce', 100, 400), (10, 'sampled', 10, 200), (100, 'sampled', 10, 200)]]
    t = takeover(pts, budget=50)
    assert t['ce_exceeds_sampled_at'] == pytest.approx(np.sqrt(10) * 10)    # ce = n^2/100, sampled = 10: equal at n = 10^1.5
    assert t['ce_exceeds_budget_at'] == pytest.approx(10 ** (1 + np.log10(50) / 2))
    assert t['memory_exceeds_at'] == pytest.approx(10 ** 1.5) and not t['ce_exceeds_sampled_everywhere']
    far = takeover(pts, budget=10_000)                                       # beyond the range: the last two points' line
    assert far['ce_exceeds_budget_at'] is None and far['ce_budget_extrapolated'] == pytest.approx(1_000)
    assert loglog_slope([1, 10, 100], [3, 30, 300]) == pytest.approx(1)

class _Spy:
    "A scorer with random scores that records the shape of every score matrix."
    def __init__(self, n): self.n, self.shapes = n, []
    def score(self, b):
        s = torch.rand(len(b['items']), self.n + 1); self.shapes.append(tuple(s.shape)); return s

def test_evaluation_never_builds_a_users_by_items_matrix():
    split = synthetic_log(2_100, 200_000, seed=1)                            # 42 users over 200k items
    spy = _Spy(split.n_items)
    users, ranks = model_ranks(spy, split, 'test', max_cells=10 * (split.n_items + 1))
    assert len(users) == split.n_users and ((ranks >= 1) & (ranks <= split.n_items)).all()
    assert max(r * c for r, c in spy.shapes) <= 10 * (split.n_items + 1) and len(spy.shapes) == 5
    spy = _Spy(1_000_000)                                                    # the default bound: 2^25 scores at once
    model_ranks(spy, synthetic_log(3_000, 1_000_000, seed=2), 'test')        # 60 users over 1M items: 33 at a time
    assert max(r * c for r, c in spy.shapes) <= 2 ** 25 and spy.shapes[0][0] == 2 ** 25 // 1_000_001

def test_sampled_softmax_trains_with_a_popularity_proposal():
    split = synthetic_log(3_000, 150, seed=0)
    m = InterestModel(ModelConfig(n_items=150, loss='sampled', sampler='popularity', n_neg=20, emb_dim=16, hidden_dim=16, latent_dim=4))
    r = fit(m, split, TrainConfig(epochs=2, progress=False, batch_size=128, lr=1e-3, scheduler='none', precision='fp32'))
    counts = np.bincount(np.concatenate([split.train_seq(u) for u in range(split.n_users)]), minlength=151)
    q = (counts + 1.0); q[0] = 0
    assert torch.allclose(m.proposal, torch.tensor(q / q.sum(), dtype=torch.float32))   # fit set the training counts
    assert len(r.history) == 2 and all(np.isfinite(h['train']['loss']) for h in r.history)
    assert 'proposal' not in m.state_dict()                                  # not saved: it is the training data's

def test_cli_accepts_the_sampled_loss():
    from interest_llm.cli import build_parser
    a = build_parser().parse_args(['train', '--loss', 'sampled', '--n-neg', '50'])
    assert a.loss == 'sampled' and a.n_neg == 50
    with pytest.raises(SystemExit): build_parser().parse_args(['train', '--loss', 'softmax'])

def test_cli_trains_with_the_popularity_proposal(tmp_path):
    from interest_llm.cli import main
    m = main(['train', '--dataset', 'simulated', '--quick', '--no-llm', '--baselines', 'none', '--loss', 'sampled', '--sampler', 'popularity',
              '--n-neg', '20', '--out', str(tmp_path / 'r')])
    assert m['model_config']['loss'] == 'sampled' and m['model_config']['sampler'] == 'popularity' and m['model_config']['n_neg'] == 20
    assert all(np.isfinite(h['train']['loss']) for h in m['history'])

def test_scoring_cache_follows_parameter_changes():
    torch.manual_seed(0)
    m = InterestModel(ModelConfig(n_items=30, text_dim=8, emb_dim=8, hidden_dim=8, latent_dim=4), torch.randn(31, 8)).eval()
    b = dict(items=torch.tensor([[1, 2, 3], [4, 5, 0]]), gaps=torch.zeros(2, 3), lengths=torch.tensor([3, 2]))
    with torch.no_grad():
        s1 = m.score(b); assert m.scoring_items() is m.scoring_items()          # cached while nothing changes
        m.adapter.W.add_(0.5)                                                 # an in-place update (an optimiser step)
        s2 = m.score(b)
        assert not torch.allclose(s1, s2) and torch.equal(m.scoring_items(), m.item_embeddings())
        m.text_emb = torch.randn(31, 8)                                       # a replaced buffer
        assert torch.equal(m.scoring_items(), m.item_embeddings())
    m.train(); assert m.scoring_items() is not m.scoring_items()              # never cached in training
