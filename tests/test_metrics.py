"""Tests of interest_llm.metrics: every formula on a case computed by hand (RecBole style)."""
import math
import numpy as np, pytest, torch
from interest_llm.metrics import (target_ranks, metrics_from_ranks, ranking_metrics, sampled_ranks,
                                  classification_metrics, mean_std, fmt_mean_std, paired_bootstrap)


def test_ranks_hand_computed_with_ties():
    s = torch.tensor([[50., .9, .5, .5, .1]] * 4)
    assert target_ranks(s, torch.tensor([1, 2, 3, 4])).tolist() == [1, 3, 3, 4]   # pessimistic ties, padding ignored
    assert target_ranks(s, torch.tensor([2, 2, 2, 2]), torch.tensor([[3, 0], [0, 0], [1, 3], [2, 0]])).tolist() == [2, 3, 1, 3]
    m = ranking_metrics(s[:3], torch.tensor([1, 2, 4]), ks=(1, 3))
    assert m['hr@1'] == pytest.approx(1 / 3) and m['hr@3'] == pytest.approx(2 / 3)
    assert m['ndcg@3'] == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert m['mrr@3'] == pytest.approx((1 + 1 / 3) / 3)

def test_constant_scores_rank_last():
    assert target_ranks(torch.zeros(1, 11), torch.tensor([5])).item() == 10

def test_bad_targets_and_nan():
    with pytest.raises(ValueError, match='0 is padding'): target_ranks(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='NaN'): target_ranks(torch.tensor([[0., float('nan')]]), torch.tensor([1]))


def test_metrics_from_ranks_by_hand():
    m = metrics_from_ranks([1, 2, 11], ks=(10,))
    assert m['hr@10'] == pytest.approx(2 / 3)
    assert m['ndcg@10'] == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert m['mrr@10'] == pytest.approx((1 + 1 / 2) / 3)
    per_row = metrics_from_ranks(np.array([1, 3]), ks=(2,), reduce=False)
    assert per_row['hr@2'].tolist() == [1., 0.] and per_row['ndcg@2'].tolist() == [1., 0.]
    assert math.isnan(metrics_from_ranks([], ks=(5,))['ndcg@5'])


def test_masked_ranks_keep_the_target():
    s = torch.tensor([[0., .9, .8, .7]])
    assert target_ranks(s, torch.tensor([3]), [np.array([1, 2, 3])]).item() == 1   # the target is never removed


def test_sampled_ranks_gather_items_not_positions():
    s = torch.tensor([[0, .9, .8, .7, .7, .1], [0, .9, .8, .7, .6, .8], [0, .1, .2, .3, .9, .8]])
    ranks = sampled_ranks(s, torch.tensor([4, 5, 3]), torch.tensor([[5, 2], [1, 4], [5, 4]]))
    assert ranks.tolist() == [2, 2, 3]
    assert sampled_ranks(torch.tensor([[0., 1., 1., 1.]]), torch.tensor([1]), torch.tensor([[2, 3]])).item() == 3
    with pytest.raises(ValueError, match='equals the target'):
        sampled_ranks(s, torch.tensor([4, 5, 3]), torch.tensor([[4, 2], [1, 4], [5, 4]]))
    with pytest.raises(ValueError, match='item indices'):
        sampled_ranks(s, torch.tensor([4, 5, 3]), torch.tensor([[0, 2], [1, 4], [5, 4]]))


def test_classification_metrics_by_hand():
    "TP=1, FN=1, FP=3, TN=1 at sigmoid >= .5; 4 of 8 (pos, neg) pairs ordered right."
    cm = classification_metrics([2., -1.], [[0., 1.], [-2., 3.]])
    assert cm['accuracy'] == pytest.approx(2 / 6) and cm['precision'] == pytest.approx(1 / 4)
    assert cm['recall'] == pytest.approx(1 / 2) and cm['f1'] == pytest.approx(1 / 3)
    assert cm['roc_auc'] == pytest.approx(0.5) and cm['pos_neg_ratio'] == '1:2'
    strict = classification_metrics([2., -1.], [[0., 1.], [-2., 3.]], threshold=0.9)   # logit >= 2.197: only 3
    assert strict['precision'] == 0 and strict['recall'] == 0 and strict['accuracy'] == pytest.approx(3 / 6)


def test_mean_std_by_hand():
    assert mean_std([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx((5.0, math.sqrt(32 / 7)))
    assert mean_std([5]) == (5.0, 0.0)
    assert fmt_mean_std([0.051, 0.049, 0.050]) == '0.0500 ± 0.0010 (n=3)'


def test_paired_bootstrap():
    x = np.random.default_rng(1).random(300)
    same = paired_bootstrap(x, x)
    assert same['lo'] == same['hi'] == same['diff'] == 0.0 and same['p'] == 1.0
    shifted = paired_bootstrap(x + .1, x)
    assert shifted['lo'] == pytest.approx(.1) and shifted['hi'] == pytest.approx(.1) and shifted['p'] == 0.0
    one = paired_bootstrap([1., 0.], [0., 0.], n=1, seed=0)
    picked = np.random.default_rng(0).integers(0, 2, size=(1, 2))
    assert one['lo'] == pytest.approx(np.array([1., 0.])[picked].mean()) and one['diff'] == 0.5
    with pytest.raises(ValueError, match='same users'): paired_bootstrap([1, 2], [1, 2, 3])
