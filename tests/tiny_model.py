"""The smallest model that follows `train.fit`'s contract (forward -> dict(loss), score -> logits), shared by the
reliability and distributed tests (the distributed worker script imports it too, from this folder)."""
from dataclasses import dataclass
import torch, torch.nn.functional as F
from torch import nn

@dataclass
class TinyCfg:
    n_items: int
    dim: int = 8

class Tiny(nn.Module):
    "Embedding + GRU, deterministic; its loss turns NaN from training step `nan_at` on (to test the NaN guard)."
    def __init__(self, cfg, nan_at=None):
        super().__init__(); self.cfg, self.nan_at, self.steps = cfg, nan_at, 0
        self.emb = nn.Embedding(cfg.n_items + 1, cfg.dim, padding_idx=0); self.gru = nn.GRU(cfg.dim, cfg.dim, batch_first=True)
    def enc(self, x): return self.gru(self.emb(x))[0]
    def forward(self, b):
        ce = F.cross_entropy((self.enc(b['items']) @ self.emb.weight.T).flatten(0, 1), b['targets'].flatten(), ignore_index=0)
        self.steps += 1
        if self.nan_at is not None and self.steps >= self.nan_at: ce = ce * float('nan')
        return dict(loss=ce, ce=ce)
    def score(self, b):
        h = self.enc(b['items'])[torch.arange(len(b['items'])), b['lengths'] - 1]
        s = h @ self.emb.weight.T; s[:, 0] = -float('inf'); return s
