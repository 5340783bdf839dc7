"""Tests of interest_llm.evaluate: model ranks under the full and masked protocols on a hand-made split, batching
under `max_cells`, sampled and classification evaluation, evaluate_all, and the moved names."""
import math
import numpy as np, pytest, torch
from interest_llm.data import SplitData
from interest_llm.evaluate import (model_ranks, evaluate_model, history_exclude, per_user_metrics, sampled_metrics,
                                   classification_eval, evaluate_all, holdout_items, results_row, TextColdScorer,
                                   to_device, model_device)


class Fixed:
    "Scores every batch from a fixed (n_users, n_items+1) table."
    def __init__(self, table):
        self.table = torch.as_tensor(table, dtype=torch.float)
        self.shapes = []
    def score(self, b):
        self.shapes.append(tuple(b['user'].shape))
        return self.table[b['user']]


SEQS = [[1, 2, 3, 4], [2, 3, 5], [4, 5, 1, 2, 3]]
TABLE = [[0, .9, .8, .7, .7, .1], [0, .9, .8, .7, .6, .8], [0, .1, .2, .3, .9, .8]]


@pytest.fixture
def hand():
    return SplitData(item_ids=np.array(['<pad>', 'a', 'b', 'c', 'd', 'e']), users=np.array(['u0', 'u1', 'u2']),
                     seqs=[np.array(s) for s in SEQS], times=[np.arange(len(s), dtype=np.int64) for s in SEQS],
                     negatives=np.array([[5, 2], [1, 4], [5, 4]]))


def test_ranks_full_and_masked_by_hand(hand):
    users, ranks = model_ranks(Fixed(TABLE), hand, 'test', batch_size=2)
    assert users.tolist() == [0, 1, 2] and ranks.tolist() == [4, 3, 3]
    assert model_ranks(Fixed(TABLE), hand, 'test', masked=True)[1].tolist() == [1, 2, 1]
    m = evaluate_model(Fixed(TABLE), hand, 'test', ks=(3,))
    assert m['hr@3'] == pytest.approx(2 / 3) and m['ndcg@3'] == pytest.approx(2 / 3 / math.log2(4))
    assert [h.tolist() for h in history_exclude(hand, [1], 'valid')] == [[2]]
    with pytest.raises(ValueError, match="stage must be"): model_ranks(Fixed(TABLE), hand, 'train')


def test_max_cells_caps_the_batch(hand):
    scorer = Fixed(TABLE)
    model_ranks(scorer, hand, 'test', batch_size=256, max_cells=2 * (hand.n_items + 1))
    assert scorer.shapes == [(2,), (1,)]


def test_per_user_sampled_classification_and_all(hand):
    pu = per_user_metrics(Fixed(TABLE), hand, ks=(3,))
    assert pu['rank'].tolist() == [4, 3, 3] and pu['target'].tolist() == [4, 5, 3]
    sm = sampled_metrics(Fixed(TABLE), hand, ks=(1, 2))                       # sampled ranks 2, 2, 3
    assert sm['hr@2'] == pytest.approx(2 / 3) and sm['hr@1'] == 0
    assert classification_eval(Fixed(TABLE), hand)['pos_neg_ratio'] == '1:2'
    ea = evaluate_all(Fixed(TABLE), hand, ks=(3,), ranks=True)
    assert ea['masked']['hr@3'] == 1.0 and 'sampled-2-uniform' in ea and ea['ranks'][1].tolist() == [4, 3, 3]
    row = results_row('fixed', 'hand', 'full', ea, dict(eval_s=0.1))
    assert row['ndcg@3'] == ea['ndcg@3'] and row['eval_s'] == 0.1


def test_holdout_items_removes_cold_items_from_training(hand):
    split, cold = holdout_items(hand, frac=0.2, seed=4)
    assert cold.tolist() == [4] and [s.tolist() for s in split.seqs] == [[1, 2, 3, 4], [2, 3, 5], [5, 1, 2, 3]]


def test_devices():
    assert model_device(torch.nn.Linear(2, 2)) == torch.device('cpu') and model_device(object()) == torch.device('cpu')
    assert to_device({'a': torch.ones(1), 'b': 'x'}, 'cpu')['b'] == 'x'


def test_old_names():
    import interest_llm.evaluate as evaluate, interest_llm.metrics as metrics, interest_llm.core as core
    with pytest.warns(DeprecationWarning, match='moved to interest_llm.metrics'):
        assert evaluate.paired_bootstrap is metrics.paired_bootstrap
    with pytest.warns(DeprecationWarning, match='moved to interest_llm.core'):
        assert evaluate.markdown_table is core.markdown_table
    assert evaluate.text_only_cold is TextColdScorer
    import interest_llm.train as train
    with pytest.warns(DeprecationWarning, match='moved to interest_llm.evaluate'): assert train.model_ranks is model_ranks
