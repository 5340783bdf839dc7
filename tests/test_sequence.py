"Tests of the sequence stage: the scratch LSTM cell, padding, step parity, input checks."
import pytest, torch, torch.nn as nn
from interest_llm.sequence import LSTMCellScratch, SequenceEncoder, copy_lstm_weights

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


def test_repeat_pairs_match_a_loop():
    "Every (row, position, item, bucket) of a padded batch, as a loop over each history finds them."
    import math
    from interest_llm.sequence import repeat_pairs, last_repeat_pairs, recency_bucket
    items = torch.tensor([[5, 3, 5, 7, 3, 3], [1, 1, 2, 0, 0, 0]])
    b, t, it, k = repeat_pairs(items, 3)
    got = sorted(zip(b.tolist(), t.tolist(), it.tolist(), k.tolist()))
    want = []
    for row, seq in enumerate(items.tolist()):
        for pos in range(len(seq)):            # padded positions too (the model masks them later)
            last = {}
            for s in range(pos + 1):
                if seq[s]: last[seq[s]] = s
            want += [(row, pos, i, min(int(math.log2(pos - s + 1)), 2)) for i, s in last.items()]
    assert got == sorted(want)
    lengths = (items > 0).sum(1)
    b2, it2, k2 = last_repeat_pairs(items, lengths, 3)
    keep = t == lengths[b] - 1
    at_last = sorted(zip(b[keep].tolist(), it[keep].tolist(), k[keep].tolist()))
    assert sorted(zip(b2.tolist(), it2.tolist(), k2.tolist())) == at_last
    assert recency_bucket(torch.tensor([0, 1, 3, 100]), 4).tolist() == [0, 1, 2, 3]
