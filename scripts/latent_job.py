#!/usr/bin/env python
"""The latent interest's own job: objectives that give z a target of its own, chosen on validation, and whether the
posterior's spread tells which users are predictable. Writes benchmarks/latent-job-<dataset>.json and .md (a section
of BENCHMARKS.md).

    python scripts/latent_job.py --dataset amazon-office --seeds 0,1,2            # every variant, then the report
    python scripts/latent_job.py --dataset amazon-office --report-only            # rewrite the .md from the .json

Each (variant, seed) is one `interest-llm train --dataset D --seed S --baselines none --threads 1` process with the
command line's defaults; a variant changes only what the VAE is trained to do (see VARIANTS). The uncertainty study
reads the runs of `ours` (the defaults): `analysis.predictability` gives each test user's mean posterior spread at the
last event, training events and rank of the true item; the popularity fallback replaces the model's ranking by
`baselines.Pop`'s for the given share of users the signal calls least predictable.
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path
import numpy as np

VARIANTS = {
    'ours': "the defaults: the decoder rebuilds the next item's LLM vector (cosine), as the prediction head targets",
    'horizon-5': "the decoder rebuilds the mean LLM vector of the next 5 items: a slower target than the next step",
    'contrastive': "the defaults plus InfoNCE between z of two views of the history (dropout, and 20% of the items "
                   "replaced at random), weight 0.1, temperature 0.5 (as ContrastVAE, Wang et al., CIKM 2022)",
    'dense-5': "the decoder is replaced by a multinomial likelihood of the bag of the next 5 items from W_z z "
               "(Mult-VAE, Liang et al., WWW 2018; a dense all-action loss as PinnerFormer's, Pancha et al., KDD 2022)",
}
HORIZON, CL_WEIGHT, CL_TAU, CL_SUB = 5, 0.1, 0.5, 0.2
SHARES = (0.1, 0.2, 0.3)

def next_k(targets, k:int):
    "(B, T, k): the targets of positions t, t+1, ..., t+k-1 (0 where the sequence has ended)."
    import torch.nn.functional as F, torch
    return torch.stack([F.pad(targets[:, j:], (0, j)) for j in range(k)], -1)

def patch(variant:str):
    "Replace `InterestModel.forward` by the variant's objective (the prediction loss is unchanged)."
    import torch, torch.nn.functional as F
    from interest_llm import model as M
    base = M.InterestModel.forward
    def forward(self, batch, return_logits=True):
        res = base(self, batch, return_logits)
        if not self.cfg.use_vae: return res
        out, mask = self._out, batch['targets'] > 0
        if variant == 'contrastive':
            if not self.training: return res
            items = batch['items']
            swap = (torch.rand(items.shape) < CL_SUB) & (items > 0)
            other = self.encode(torch.where(swap, torch.randint(1, self.cfg.n_items + 1, items.shape), items),
                                batch.get('lengths'), batch.get('gaps'))
            a, b = out['z'][mask], other['z'][mask]
            keep = torch.randperm(len(a))[:1024]
            a, b = F.normalize(a[keep].float(), dim=-1), F.normalize(b[keep].float(), dim=-1)
            sim, labels = a @ b.T / CL_TAU, torch.arange(len(a))
            res['loss'] = res['loss'] + CL_WEIGHT * 0.5 * (F.cross_entropy(sim, labels) + F.cross_entropy(sim.T, labels))
            return res
        nxt = next_k(batch['targets'], HORIZON)[mask]                                     # (M, k)
        if variant == 'horizon-5':
            vec = self.text_emb[nxt] if self.cfg.uses_text else out['E_all'][nxt].detach()  # (M, k, R)
            have = (nxt > 0).float()[..., None]
            recon = self.vae.recon_loss(self.vae.decode(out['z'][mask]), (vec * have).sum(1) / have.sum(1))
        else:                                                                               # dense-5
            logits = self.W_z(out['z'][mask]) @ out['E_all'].T + self.item_bias
            logp = logits.index_fill(-1, torch.tensor([0]), float('-inf')).log_softmax(-1).gather(1, nxt)
            recon = -(logp.masked_fill(nxt == 0, 0).sum(1) / (nxt > 0).sum(1)).mean()
        res['loss'] = res['loss'] + self.cfg.recon_weight * (recon - res['recon'])
        res['recon'] = recon
        return res
    encode = M.InterestModel.encode
    def keep_encode(self, *a, **k):
        self._out = encode(self, *a, **k)
        return self._out
    M.InterestModel.encode = keep_encode
    if variant != 'ours': M.InterestModel.forward = forward

def train(variant, dataset, seed, folder, data_dir):
    argv = [sys.executable, __file__, '--as', variant, 'train', '--dataset', dataset, '--seed', str(seed),
            '--baselines', 'none', '--threads', '1', '--no-progress', '--out', str(folder)]
    if data_dir: argv += ['--data-dir', data_dir]
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0: sys.exit(f"{' '.join(argv[1:])} failed:\n{p.stderr[-2000:]}")

def run_row(variant, seed, folder) -> dict:
    m = json.loads((folder / 'metrics.json').read_text())
    lat = m['latent']
    hi = horizon_information(folder)
    return dict(variant=variant, seed=seed, valid_ndcg10=m['valid']['ndcg@10'], test_ndcg10=m['test']['ndcg@10'],
                test_hr10=m['test']['hr@10'], kl=lat['kl'], allowance=m['model_config']['free_bits'] * lat['latent_dim'],
                active=lat['active_units'], best_epoch=m['timing']['best_epoch'], mi_horizon=hi['mi'],
                mi_horizon_shuffled=hi['shuffled'])

def horizon_information(folder, k:int=HORIZON, dims:int=16, alpha:float=1.0, seed:int=0) -> dict:
    """A linear-Gaussian estimate, in nats, of I(mu_t; y_t) with y_t the mean LLM vector of the next k items
    (reduced to `dims` principal components): a ridge map from mu_t fitted on half of the users, and
    1/2 log det Cov(y) - 1/2 log det Cov(y - y_hat) on the other half; `shuffled` pairs mu_t with another
    position's y_t (the estimate's floor). An estimate of what z holds about the slow interest; the KL bounds it."""
    import torch
    from interest_llm.analysis import latent_states
    from interest_llm.data import SplitData
    from interest_llm.model import InterestModel
    torch.set_num_threads(1)
    split, model = SplitData.load(folder / 'split'), InterestModel.from_pretrained(folder)
    text = model.text_emb.numpy()
    users = np.array([u for u in range(split.n_users) if len(split.train_seq(u)) >= 2])
    X, Y, U = [], [], []
    for u, mu in zip(users, latent_states(model, split, users, 'mu', part='train')):
        s = split.train_seq(u)
        for t in range(len(s) - 1):
            X.append(mu[t]); Y.append(text[s[t + 1:t + 1 + k]].mean(0)); U.append(u)
    X, Y, U = np.asarray(X, np.float64), np.asarray(Y, np.float64), np.asarray(U)
    held = np.isin(U, np.random.default_rng(seed).permutation(users)[:len(users) // 2])
    Yc = Y - Y[~held].mean(0)
    P = np.linalg.svd(Yc[~held], full_matrices=False)[2][:dims].T               # principal directions
    Yp = Yc @ P
    def info(Xa):
        Xs = (Xa - Xa[~held].mean(0)) / (Xa[~held].std(0) + 1e-9)
        A, B = Xs[~held], Yp[~held]
        W = np.linalg.solve(A.T @ A + alpha * np.eye(A.shape[1]), A.T @ B)
        res = Yp[held] - Xs[held] @ W
        logdet = lambda M: np.linalg.slogdet(np.cov(M.T))[1]
        return float(0.5 * (logdet(Yp[held]) - logdet(res)))
    return dict(mi=info(X), shuffled=info(X[np.random.default_rng(seed + 1).permutation(len(X))]),
                positions=int(len(X)), dims=dims, k=k)

def uncertainty(folder) -> dict:
    "Spearman correlations and the popularity fallback for one run of the defaults."
    import torch
    from scipy.stats import spearmanr
    from interest_llm.analysis import predictability
    from interest_llm.baselines import Pop
    from interest_llm.data import SplitData
    from interest_llm.evaluate import model_ranks
    from interest_llm.metrics import metrics_from_ranks
    from interest_llm.model import InterestModel
    torch.set_num_threads(1)
    split, model = SplitData.load(folder / 'split'), InterestModel.from_pretrained(folder)
    out = {}
    for stage in ('valid', 'test'):
        p = predictability(model, split, stage)
        _, pop_ranks = model_ranks(Pop().fit(split), split, stage)
        nd = metrics_from_ranks(p['rank'].to_numpy(), (10,), reduce=False)['ndcg@10']
        pop = metrics_from_ranks(pop_ranks, (10,), reduce=False)['ndcg@10']
        signals = {'sigma': p.sigma.to_numpy(), 'short history': -p.train_events.to_numpy() + 1e-9 * np.arange(len(p))}
        fallback = {name: {str(q): float(np.where(s >= np.quantile(s, 1 - q), pop, nd).mean()) for q in SHARES}
                    for name, s in signals.items()}
        quint = lambda s: [float(nd[b].mean()) for b in np.array_split(np.argsort(s, kind='stable'), 5)]
        out[stage] = dict(users=len(p), ndcg10=float(nd.mean()), rho_sigma=float(spearmanr(p.sigma, p['rank'])[0]),
                          rho_events=float(spearmanr(p.train_events, p['rank'])[0]),
                          rho_sigma_events=float(spearmanr(p.sigma, p.train_events)[0]), fallback=fallback,
                          ndcg_by_sigma_quintile=quint(p.sigma.to_numpy()),
                          ndcg_by_events_quintile=quint(p.train_events.to_numpy() + 1e-9 * np.arange(len(p))))
    return out

def ms(v, d=4): return f"{np.mean(v):.{d}f}" + (f" ± {np.std(v, ddof=1):.{d}f}" if len(v) > 1 else '')

def markdown(res) -> str:
    ds, rows, U = res['dataset'], res['rows'], res['uncertainty']
    seeds = ','.join(str(s) for s in res['seeds'])
    L = [f"## The latent's own job ({ds})", '',
         f"Command: `python scripts/latent_job.py --dataset {ds} --seeds {seeds}` ({res['finished']} UTC). Each variant "
         "trains with the command line's defaults and changes only what the VAE is trained to do; the choice is made "
         "on validation NDCG@10 (mean over seeds), test figures are reported, not used.", '',
         '| variant | what z is trained to do | valid NDCG@10 | test NDCG@10 | test HR@10 | KL (nats) | KL above the '
         f'allowance | I(z; next {HORIZON} items), nats | same, shuffled pairs |', '|---|---|---|---|---|---|---|---|---|']
    for v, what in VARIANTS.items():
        r = [x for x in rows if x['variant'] == v]
        if r: L.append(f"| {v} | {what} | {ms([x['valid_ndcg10'] for x in r])} | {ms([x['test_ndcg10'] for x in r])} | "
                       f"{ms([x['test_hr10'] for x in r])} | {ms([x['kl'] for x in r], 3)} | "
                       f"{ms([x['kl'] - x['allowance'] for x in r], 3)} | {ms([x['mi_horizon'] for x in r], 3)} | "
                       f"{ms([x['mi_horizon_shuffled'] for x in r], 3)} |")
    valid = {v: [x['valid_ndcg10'] for x in rows if x['variant'] == v] for v in VARIANTS}
    valid = {v: x for v, x in valid.items() if x}
    best = max(valid, key=lambda v: np.mean(valid[v]))
    gap, sd = np.mean(valid[best]) - np.mean(valid['ours']), max(np.std(x, ddof=1) for x in valid.values())
    verdict = (" (the defaults): no variant gives z a job that pays on validation." if best == 'ours' else
               f", {gap:+.4f} over the defaults: within the spread between seeds (sd up to {sd:.4f}), so no variant "
               "replaces the defaults." if gap <= sd else f", {gap:+.4f} over the defaults (sd up to {sd:.4f}).")
    L += ['', f"I(z; next {HORIZON} items): a linear-Gaussian estimate of what the posterior mean at each training "
          f"position says about the mean LLM vector of the next {HORIZON} items (16 principal components; a ridge map "
          "fitted on half of the users, scored on the other half); the KL bounds the information z holds.",
          '', f"Best on validation: **{best}**" + verdict, '']
    if U:
        t = [u['test'] for u in U]
        L += [f"### Does the posterior's spread tell which users are predictable? ({ds}, test, seeds {seeds})", '',
              "Spearman's rank correlation with the rank of the true item (positive: a larger value goes with a worse "
              "rank), per seed, mean ± sd:", '',
              f"- mean posterior spread σ at the last event: {ms([u['rho_sigma'] for u in t], 3)}",
              f"- training events: {ms([u['rho_events'] for u in t], 3)}",
              f"- σ against training events: {ms([u['rho_sigma_events'] for u in t], 3)}", '',
              'Test NDCG@10 when the users a signal calls least predictable get the most popular items instead:', '',
              '| share of users | ' + ' | '.join(f'by {n}' for n in t[0]['fallback']) + ' |',
              '|---|' + '---|' * len(t[0]['fallback'])]
        L.append('| none (the model for everyone) | ' + ' | '.join(ms([u['ndcg10'] for u in t]) for _ in t[0]['fallback']) + ' |')
        for q in SHARES:
            L.append(f"| {q:.0%} | " + ' | '.join(ms([u['fallback'][n][str(q)] for u in t]) for n in t[0]['fallback']) + ' |')
        L.append('')
    return '\n'.join(L) + '\n'

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dataset', default='amazon-office')
    ap.add_argument('--seeds', default='0,1,2')
    ap.add_argument('--variants', default=','.join(VARIANTS))
    ap.add_argument('--runs', default='runs/latent-job', help='folder of the run folders (a finished run is reused)')
    ap.add_argument('--data-dir', default=None)
    ap.add_argument('--report-only', action='store_true')
    a = ap.parse_args()
    out = Path('benchmarks') / f"latent-job-{a.dataset}"
    if a.report_only:
        out.with_suffix('.md').write_text(markdown(json.loads(out.with_suffix('.json').read_text())))
        return
    seeds, rows, U = [int(s) for s in a.seeds.split(',')], [], []
    for v in a.variants.split(','):
        if v not in VARIANTS: sys.exit(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
        for s in seeds:
            folder = Path(a.runs) / a.dataset / f"{v}-seed{s}"
            if not (folder / 'metrics.json').exists():
                print(f"train {v} seed {s} -> {folder}", flush=True)
                train(v, a.dataset, s, folder, a.data_dir)
            rows.append(run_row(v, s, folder))
            if v == 'ours': U.append(uncertainty(folder))
    res = dict(dataset=a.dataset, seeds=seeds, rows=rows, uncertainty=U, finished=time.strftime('%Y-%m-%d %H:%M'))
    out.with_suffix('.json').write_text(json.dumps(res, indent=1) + '\n')
    out.with_suffix('.md').write_text(markdown(res))
    print(out.with_suffix('.md').read_text())

if __name__ == '__main__':
    if len(sys.argv) > 2 and sys.argv[1] == '--as':
        patch(sys.argv[2])
        from interest_llm.cli import main as cli
        cli(sys.argv[3:])
    else: main()
